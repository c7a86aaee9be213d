using System.Net;
using System.Net.Sockets;

namespace ApiServer.Tests.Data;

/// <summary>
/// A loopback TCP forwarder in front of the test PostgreSQL server: the server under test connects through it, and
/// <see cref="CutAsync"/> drops every connection and refuses new ones, which to the server is the database going away, without
/// stopping the cluster other tests share. <see cref="Restore"/> listens again on the same port.
/// </summary>
internal sealed class TcpCutter : IAsyncDisposable
{
    private readonly IPEndPoint _target;
    private readonly object _gate = new();
    private readonly List<TcpClient> _open = [];
    private TcpListener? _listener;
    private Task _accepting = Task.CompletedTask;

    public TcpCutter(string host, int port)
    {
        _target = new IPEndPoint(IPAddress.Parse(host == "localhost" ? "127.0.0.1" : host), port);
        Listen(0);
    }

    public int Port { get; private set; }

    private void Listen(int port)
    {
        var listener = new TcpListener(IPAddress.Loopback, port);
        listener.Start();
        Port = ((IPEndPoint)listener.LocalEndpoint).Port;
        _listener = listener;
        _accepting = AcceptAsync(listener);
    }

    private async Task AcceptAsync(TcpListener listener)
    {
        while (true)
        {
            TcpClient client;
            try
            {
                client = await listener.AcceptTcpClientAsync();
            }
            catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
            {
                return; // cut
            }
            _ = ForwardAsync(client);
        }
    }

    private async Task ForwardAsync(TcpClient client)
    {
        var upstream = new TcpClient();
        lock (_gate)
        {
            _open.Add(client);
            _open.Add(upstream);
        }
        try
        {
            await upstream.ConnectAsync(_target);
            var a = client.GetStream();
            var b = upstream.GetStream();
            await Task.WhenAny(a.CopyToAsync(b), b.CopyToAsync(a));
        }
        catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException)
        {
        }
        finally
        {
            client.Dispose();
            upstream.Dispose();
        }
    }

    /// <summary>The database is gone: open connections reset, new ones refused.</summary>
    public async Task CutAsync()
    {
        _listener?.Stop();
        await _accepting;
        lock (_gate)
        {
            foreach (var socket in _open)
            {
                // A reset, not a polite close: what a crashed or unplugged database looks like.
                try { socket.Client?.LingerState = new LingerOption(true, 0); } catch (ObjectDisposedException) { }
                socket.Dispose();
            }
            _open.Clear();
        }
    }

    /// <summary>The database is back, at the same address.</summary>
    public void Restore() => Listen(Port);

    public async ValueTask DisposeAsync() => await CutAsync();
}
