using ApiServer.Agent.Tests.Infrastructure;
using ApiServer.Agent.Tools;

namespace ApiServer.Agent.Tests.Tools;

public sealed class WorkspaceToolTests : WorkspaceToolTestBase
{
    [Fact]
    public void The_four_workspace_tools_are_registered_when_a_workspace_is_set()
    {
        Assert.Equal(["find_files", "grep", "list_dir", "read_file"], H.Agent.ServerToolNames.Order());
    }

    [Fact]
    public async Task No_workspace_means_no_workspace_tools()
    {
        await using var h = await AgentHarness.StartAsync();

        Assert.Empty(h.Agent.ServerToolNames);
    }

    [Fact]
    public async Task List_dir_marks_directories_and_symlinks()
    {
        Ws.Write("src/app.cs", "class App {}");
        Ws.Write("readme.md", "hello");
        File.CreateSymbolicLink(Path.Combine(Ws.Root, "link.md"), "readme.md");

        var result = await Call("list_dir", "{}");

        Assert.Equal("link.md@\nreadme.md  (5 bytes)\nsrc/", result.Content);
    }

    [Fact]
    public async Task List_dir_of_a_huge_directory_shows_the_first_entries_in_order_and_the_total()
    {
        var names = Enumerable.Range(0, 1500).Select(i => $"f{i * 7919 % 1500:D4}.txt").ToList();
        foreach (var name in names)
            Ws.Write(name, "");

        var result = await Call("list_dir", "{}");

        var lines = result.Content.Split('\n');
        Assert.Equal(names.Order(StringComparer.Ordinal).Take(1000).Select(n => $"{n}  (0 bytes)"), lines.Take(1000));
        Assert.Equal("[truncated: output limited to 1000 lines / 65536 bytes] (1500 entries in all)", lines[1000]);
    }

    [Fact]
    public async Task Read_file_honours_offset_and_limit_in_lines_and_says_how_to_continue()
    {
        Ws.Write("lines.txt", string.Join("\n", Enumerable.Range(1, 10).Select(i => $"line {i}")));

        var result = await Call("read_file", """{"path":"lines.txt","offset":3,"limit":2}""");

        Assert.StartsWith("line 3\nline 4\n[truncated", result.Content);
        Assert.Contains("offset=5", result.Content);
    }

    [Fact]
    public async Task Large_output_is_capped_with_a_visible_marker()
    {
        Ws.Write("big.txt", string.Join("\n", Enumerable.Range(1, 5000).Select(i => new string('x', 100))));

        var result = await Call("read_file", """{"path":"big.txt"}""");

        Assert.False(result.IsError);
        Assert.Contains("[truncated", result.Content);
        Assert.True(result.Content.Length < 70 * 1024);
    }

    [Fact]
    public async Task Binary_files_are_detected_and_not_dumped()
    {
        File.WriteAllBytes(Path.Combine(Ws.Root, "image.bin"), [0x89, 0x50, 0x4E, 0x47, 0x00, 0x01, 0x02]);

        var result = await Call("read_file", """{"path":"image.bin"}""");

        Assert.True(result.IsError);
        Assert.Contains("binary file (7 bytes)", result.Content);
    }

    [Fact]
    public async Task Grep_finds_matches_with_path_and_line_and_honours_the_glob()
    {
        Ws.Write("src/a.cs", "int x = 1;\n// TODO: fix\n");
        Ws.Write("src/b.txt", "TODO: not code\n");

        var result = await Call("grep", """{"pattern":"TODO","glob":"*.cs"}""");

        Assert.Equal("src/a.cs:2:// TODO: fix", result.Content);
    }

    [Fact]
    public async Task Grep_with_an_invalid_regex_returns_a_tool_error()
    {
        var result = await Call("grep", """{"pattern":"(unclosed"}""");

        Assert.True(result.IsError);
        Assert.Contains("Invalid regular expression", result.Content);
    }

    [Fact]
    public async Task Find_files_matches_names_anywhere_and_paths_with_double_star()
    {
        Ws.Write("a/one.cs", "");
        Ws.Write("a/b/two.cs", "");
        Ws.Write("a/b/three.txt", "");

        var byName = await Call("find_files", """{"glob":"*.cs"}""");
        var byPath = await Call("find_files", """{"glob":"a/**/t*.*"}""");

        Assert.Equal("a/b/two.cs\na/one.cs", byName.Content);
        Assert.Equal("a/b/three.txt\na/b/two.cs", byPath.Content);
    }
}
