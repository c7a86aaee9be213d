using System.Security.Claims;
using System.Security.Cryptography;
using System.Text;
using ApiServer.Configuration;
using ApiServer.Http;

namespace ApiServer.Access;

/// <summary>
/// The configured keys: API_SERVER_KEY as one key with every scope, plus API_SERVER_KEYS_FILE's entries. The file is watched
/// and reloaded when it changes, so a key is revoked without a restart; a reload that fails keeps the keys in force.
/// </summary>
public sealed partial class ApiKeyRing : IDisposable
{
    private readonly string? _singleKey;
    private readonly string? _path;
    private readonly Func<string, string?> _variables;
    private readonly ILogger<ApiKeyRing> _logger;
    private readonly FileSystemWatcher? _watcher;
    private readonly Lock _reloadLock = new();
    private volatile Snapshot _snapshot;

    private sealed record Snapshot(IReadOnlyList<(ApiKey Key, ClaimsPrincipal Principal)> Keys);

    /// <summary>Builds the ring and reads the file now; a bad file throws <see cref="InvalidSettingsException"/> naming the entry.</summary>
    public ApiKeyRing(string singleKey, string keysFile, Func<string, string?> variables, ILogger<ApiKeyRing> logger, bool watch = true)
    {
        _singleKey = singleKey.Length > 0 ? singleKey : null;
        _path = keysFile.Length > 0 ? Path.GetFullPath(keysFile) : null;
        _variables = variables;
        _logger = logger;
        try
        {
            _snapshot = Read();
        }
        catch (KeysFile.KeysFileException ex)
        {
            throw new InvalidSettingsException([new SettingError(KeysFile.Variable, keysFile, false, "a key file as README describes", ex.Message)]);
        }
        if (_path is not null && watch)
            _watcher = Watch(_path);
    }

    /// <summary>True when any key is configured: requests must then authenticate.</summary>
    public bool Enabled => _singleKey is not null || _path is not null;

    /// <summary>Raised after every reload attempt (true when the new keys are in force); tests wait on it.</summary>
    public event Action<bool>? Reloaded;

    public IReadOnlyList<ApiKey> Keys => _snapshot.Keys.Select(k => k.Key).ToList();

    /// <summary>
    /// The key whose secret was presented, with its principal, or null. Every configured digest is compared, in constant time,
    /// whether or not one matched earlier, so the time taken says nothing about which key (or how much of one) was close.
    /// </summary>
    public (ApiKey Key, ClaimsPrincipal Principal)? Authenticate(ReadOnlySpan<char> presented)
    {
        Span<byte> digest = stackalloc byte[SHA256.HashSizeInBytes];
        var bytes = Encoding.UTF8.GetBytes(presented.ToArray());
        SHA256.HashData(bytes, digest);
        (ApiKey, ClaimsPrincipal)? found = null;
        foreach (var entry in _snapshot.Keys)
        {
            if (CryptographicOperations.FixedTimeEquals(digest, entry.Key.Sha256))
                found = entry;
        }
        return found;
    }

    /// <summary>Reads the file again; on failure the keys in force stay and the reason is logged (it never contains a secret).</summary>
    public bool Reload()
    {
        bool ok;
        lock (_reloadLock)
        {
            try
            {
                _snapshot = Read();
                LogReloaded(_logger, _snapshot.Keys.Count);
                ok = true;
            }
            catch (KeysFile.KeysFileException ex)
            {
                LogReloadFailed(_logger, ex.Message);
                ok = false;
            }
        }
        Reloaded?.Invoke(ok);
        return ok;
    }

    private Snapshot Read()
    {
        var keys = new List<ApiKey>();
        if (_singleKey is not null)
            keys.Add(KeysFile.SingleKey(_singleKey));
        if (_path is not null)
        {
            foreach (var key in KeysFile.Load(_path, _variables))
            {
                if (_singleKey is not null && string.Equals(key.Name, KeysFile.SingleKeyName, StringComparison.OrdinalIgnoreCase))
                    throw new KeysFile.KeysFileException($"entry \"{key.Name}\" takes the name API_SERVER_KEY's key has; rename it");
                keys.Add(key);
            }
        }
        return new Snapshot(keys.Select(k => (k, ApiPrincipal.ForKey(k))).ToList());
    }

    private FileSystemWatcher Watch(string path)
    {
        // The folder, not the file: editors and `mv` replace the file, which a watcher on the file itself would miss.
        var watcher = new FileSystemWatcher(Path.GetDirectoryName(path)!, Path.GetFileName(path))
        {
            NotifyFilter = NotifyFilters.LastWrite | NotifyFilters.FileName | NotifyFilters.Size | NotifyFilters.CreationTime,
        };
        watcher.Changed += (_, _) => Reload();
        watcher.Created += (_, _) => Reload();
        watcher.Renamed += (_, _) => Reload();
        watcher.EnableRaisingEvents = true;
        return watcher;
    }

    public void Dispose() => _watcher?.Dispose();

    [LoggerMessage(Level = LogLevel.Information, Message = "API_SERVER_KEYS_FILE reloaded: {Count} keys in force")]
    private static partial void LogReloaded(ILogger logger, int count);

    [LoggerMessage(Level = LogLevel.Error, Message = "API_SERVER_KEYS_FILE not reloaded, the previous keys stay in force: {Reason}")]
    private static partial void LogReloadFailed(ILogger logger, string reason);
}
