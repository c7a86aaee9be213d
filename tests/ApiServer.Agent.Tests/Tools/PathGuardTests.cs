using System.Net.Sockets;
using ApiServer.Agent.Tests.Infrastructure;
using ApiServer.Agent.Tools;

namespace ApiServer.Agent.Tests.Tools;

/// <summary>Every way a model-supplied path could leave the workspace or hit something that is not a plain file.</summary>
public sealed class PathGuardTests : WorkspaceToolTestBase
{
    protected override void Seed()
    {
        Ws.Write("inside.txt", "fine");
    }

    [Theory]
    [InlineData("read_file", """{"path":"../outside/secret.txt"}""")]
    [InlineData("read_file", """{"path":"sub/../../outside/secret.txt"}""")]
    [InlineData("list_dir", """{"path":".."}""")]
    [InlineData("grep", """{"pattern":"secret","path":"../outside"}""")]
    [InlineData("find_files", """{"glob":"*","path":"../outside"}""")]
    public async Task Dot_dot_escapes_are_refused(string tool, string arguments)
    {
        var result = await Call(tool, arguments);

        Assert.True(result.IsError);
        Assert.Contains("outside the workspace", result.Content);
        Assert.DoesNotContain("top secret", result.Content);
    }

    [Fact]
    public async Task An_absolute_path_outside_the_root_is_refused()
    {
        var result = await Call("read_file", $$"""{"path":"{{Path.Combine(Ws.Outside, "secret.txt")}}"}""");

        Assert.True(result.IsError);
        Assert.Contains("outside the workspace", result.Content);
    }

    [Fact]
    public async Task An_absolute_path_inside_the_root_is_allowed()
    {
        var result = await Call("read_file", $$"""{"path":"{{Path.Combine(Ws.Root, "inside.txt")}}"}""");

        Assert.False(result.IsError);
        Assert.Equal("fine", result.Content);
    }

    [Fact]
    public async Task A_symlinked_file_pointing_out_of_the_root_is_refused()
    {
        File.CreateSymbolicLink(Path.Combine(Ws.Root, "leak.txt"), Path.Combine(Ws.Outside, "secret.txt"));

        var result = await Call("read_file", """{"path":"leak.txt"}""");

        Assert.True(result.IsError);
        Assert.Contains("symlink", result.Content);
    }

    [Fact]
    public async Task A_symlinked_directory_pointing_out_of_the_root_is_refused_for_paths_below_it()
    {
        Directory.CreateSymbolicLink(Path.Combine(Ws.Root, "door"), Ws.Outside);

        var read = await Call("read_file", """{"path":"door/secret.txt"}""");
        var list = await Call("list_dir", """{"path":"door"}""");

        Assert.True(read.IsError);
        Assert.True(list.IsError);
        Assert.Contains("symlink", read.Content);
    }

    [Fact]
    public async Task A_symlink_is_not_followed_even_when_it_stays_inside_the_root()
    {
        File.CreateSymbolicLink(Path.Combine(Ws.Root, "alias.txt"), "inside.txt");
        Directory.CreateDirectory(Path.Combine(Ws.Root, "real"));
        Directory.CreateSymbolicLink(Path.Combine(Ws.Root, "alias-dir"), "real");

        var read = await Call("read_file", """{"path":"alias.txt"}""");
        var list = await Call("list_dir", """{"path":"alias-dir"}""");
        var root = await Call("list_dir", "{}");

        Assert.Equal(ToolResult.Error("Path refused: 'alias.txt' is or goes through a symlink; the workspace tools do not follow symlinks."), read);
        Assert.True(list.IsError);
        Assert.Contains("symlink", list.Content);
        Assert.Contains("alias.txt@", root.Content);
    }

    [Fact]
    public async Task A_hard_link_to_an_outside_file_is_read_through_as_documented()
    {
        // Making the link needs write access to the workspace, where the same person could copy the file in.
        Posix.HardLink(Path.Combine(Ws.Outside, "secret.txt"), Path.Combine(Ws.Root, "hard.txt"));

        var result = await Call("read_file", """{"path":"hard.txt"}""");

        Assert.Equal(ToolResult.Ok("top secret"), result);
    }

    [Fact]
    public async Task Recursive_tools_do_not_follow_symlinks_out_of_the_root()
    {
        Directory.CreateSymbolicLink(Path.Combine(Ws.Root, "door"), Ws.Outside);

        var grep = await Call("grep", """{"pattern":"secret"}""");
        var find = await Call("find_files", """{"glob":"*.txt"}""");

        Assert.DoesNotContain("top secret", grep.Content);
        Assert.DoesNotContain("secret.txt", find.Content);
    }

    [Fact]
    public async Task A_path_with_a_NUL_byte_is_refused()
    {
        var result = await Call("read_file", """{"path":"inside.txt\u0000.png"}""");

        Assert.True(result.IsError);
        Assert.Contains("NUL", result.Content);
    }

    [Fact]
    public async Task A_symlink_to_dev_null_is_refused()
    {
        File.CreateSymbolicLink(Path.Combine(Ws.Root, "null"), "/dev/null");

        var result = await Call("read_file", """{"path":"null"}""");

        Assert.True(result.IsError);
    }

    [Fact]
    public async Task A_FIFO_inside_the_workspace_is_refused_without_blocking()
    {
        Posix.MakeFifo(Path.Combine(Ws.Root, "pipe"));

        var read = await Call("read_file", """{"path":"pipe"}""");
        var grep = await Call("grep", """{"pattern":"x"}""");

        Assert.True(read.IsError);
        Assert.Contains("not a regular file", read.Content);
        Assert.False(grep.IsError);
    }

    [Fact]
    public async Task A_unix_socket_inside_the_workspace_is_refused()
    {
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        socket.Bind(new UnixDomainSocketEndPoint(Path.Combine(Ws.Root, "sock")));

        var result = await Call("read_file", """{"path":"sock"}""");

        Assert.True(result.IsError);
        Assert.Contains("not a regular file", result.Content);
    }

    [Theory]
    [InlineData("read_file", "{}", "missing the required property 'path'")]
    [InlineData("read_file", """{"path":3}""", "arguments.path must be a string")]
    [InlineData("read_file", """{"path":"inside.txt","limit":"ten"}""", "arguments.limit must be a integer")]
    [InlineData("read_file", """{"path":"inside.txt","mode":"rw"}""", "unknown property 'mode'")]
    [InlineData("grep", """{"path":"."}""", "missing the required property 'pattern'")]
    [InlineData("find_files", """["*.cs"]""", "arguments must be a object")]
    public async Task Arguments_that_do_not_match_the_schema_are_refused_naming_the_problem(string tool, string arguments, string problem)
    {
        var result = await Call(tool, arguments);

        Assert.True(result.IsError);
        Assert.Contains(problem, result.Content);
    }
}
