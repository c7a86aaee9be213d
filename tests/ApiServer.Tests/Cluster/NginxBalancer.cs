using System.Globalization;
using System.Text;

namespace ApiServer.Tests.Cluster;

/// <summary>
/// nginx from Debian's package as a round-robin balancer, run in the foreground (<c>daemon off</c>) with a generated config whose
/// every path (pid, logs, temp files) is in a directory of its own, on a loopback port. docs/deployment.md shows the same
/// proxy settings; <see cref="Config"/> is where they are decided for the tests.
/// </summary>
public sealed class NginxBalancer : IDisposable
{
    /// <summary>The header the balancer adds naming the replica (ip:port) that answered; several when it went on to the next one.</summary>
    public const string UpstreamHeader = "X-Upstream-Addr";

    private readonly ChildProcess _process;

    private NginxBalancer(ChildProcess process, string directory, int port)
    {
        _process = process;
        Directory = directory;
        BaseAddress = new Uri($"http://127.0.0.1:{port}/");
    }

    public Uri BaseAddress { get; }

    public string Directory { get; }

    public string Output => _process.Output + ReadErrorLog();

    /// <summary>The nginx binary: on PATH, or in /usr/sbin where Debian puts it (not on a non-root user's PATH).</summary>
    public static string? Executable =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries).Append("/usr/sbin")
            .Select(dir => Path.Combine(dir, "nginx")).FirstOrDefault(File.Exists);

    /// <summary>Starts nginx in front of <paramref name="replicas"/> (host:port each) and returns once it listens.</summary>
    public static async Task<NginxBalancer> StartAsync(IReadOnlyList<string> replicas, int workers = 1)
    {
        var executable = Executable ?? throw new InvalidOperationException(
            "nginx is not installed: `apt-get install nginx` (.ci/run installs it). The cluster tests start it with a config of their own.");
        var directory = Path.Combine(Path.GetTempPath(), "apiserver-cluster-nginx-" + Guid.NewGuid().ToString("N")[..12]);
        if (OperatingSystem.IsWindows())
            throw new PlatformNotSupportedException("the cluster harness runs on Linux (Debian's nginx and PostgreSQL)");
        // Readable by nginx's workers, which run as nobody when the tests run as root (nginx then hands its temp dirs to them).
        System.IO.Directory.CreateDirectory(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute
            | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
        var port = ChildProcess.FreePort();
        var config = Path.Combine(directory, "nginx.conf");
        await File.WriteAllTextAsync(config, Config(directory, port, replicas, workers, asRoot: Environment.UserName == "root"));

        // -e: the error log nginx opens before it reads the config (its default, /var/log/nginx, is root's).
        var process = ChildProcess.Start(executable, ["-p", directory, "-c", config, "-e", Path.Combine(directory, "error.log")]);
        var balancer = new NginxBalancer(process, directory, port);
        try
        {
            await balancer.WaitUntilListeningAsync(port);
            return balancer;
        }
        catch
        {
            balancer.Dispose();
            throw;
        }
    }

    private async Task WaitUntilListeningAsync(int port)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (true)
        {
            if (_process.HasExited)
                throw new InvalidOperationException($"nginx exited at start:\n{Output}");
            try
            {
                using var client = new System.Net.Sockets.TcpClient();
                await client.ConnectAsync(System.Net.IPAddress.Loopback, port);
                return;
            }
            catch (System.Net.Sockets.SocketException) when (DateTime.UtcNow < deadline)
            {
                await Task.Delay(50);
            }
        }
    }

    /// <summary>
    /// The balancer's config. Round robin over the replicas; HTTP/1.1 with kept-alive connections to them; no buffering and
    /// hour-long read timeouts so SSE streams flow event by event and stay open; and a request goes on to the next replica only
    /// when it could not be sent (connection refused or timed out): <c>non_idempotent</c> is deliberately absent from
    /// <c>proxy_next_upstream</c>, so a POST that reached a replica is never sent to a second one.
    /// </summary>
    public static string Config(string directory, int port, IReadOnlyList<string> replicas, int workers, bool asRoot)
    {
        var servers = new StringBuilder();
        foreach (var replica in replicas)
            servers.Append(CultureInfo.InvariantCulture, $"        server {replica} max_fails=1 fail_timeout=5s;\n");
        return $$"""
            daemon off;
            master_process on;
            worker_processes {{workers}};
            {{(asRoot ? "user nobody nogroup;" : "")}}
            pid {{directory}}/nginx.pid;
            error_log {{directory}}/error.log warn;
            events { worker_connections 4096; }
            http {
                access_log off;
                client_body_temp_path {{directory}}/client_body;
                proxy_temp_path {{directory}}/proxy;
                fastcgi_temp_path {{directory}}/fastcgi;
                uwsgi_temp_path {{directory}}/uwsgi;
                scgi_temp_path {{directory}}/scgi;
                upstream apiserver {
            {{servers}}        keepalive 64;
                }
                server {
                    listen 127.0.0.1:{{port}};
                    client_max_body_size 0;
                    location / {
                        proxy_pass http://apiserver;
                        proxy_http_version 1.1;
                        proxy_set_header Connection "";
                        proxy_set_header Host $host;
                        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
                        proxy_set_header X-Forwarded-Proto $scheme;
                        proxy_buffering off;
                        proxy_request_buffering off;
                        proxy_read_timeout 3600s;
                        proxy_send_timeout 3600s;
                        proxy_connect_timeout 2s;
                        proxy_next_upstream error timeout;
                        proxy_next_upstream_tries 3;
                        add_header {{UpstreamHeader}} $upstream_addr always;
                    }
                }
            }

            """;
    }

    private string ReadErrorLog()
    {
        try
        {
            var text = File.ReadAllText(Path.Combine(Directory, "error.log"));
            return text.Length <= 16_384 ? text : text[^16_384..];
        }
        catch (IOException)
        {
            return "";
        }
    }

    public void Dispose()
    {
        // The whole tree: a master killed alone would leave its worker listening.
        _process.Dispose();
        try { System.IO.Directory.Delete(Directory, recursive: true); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }
}
