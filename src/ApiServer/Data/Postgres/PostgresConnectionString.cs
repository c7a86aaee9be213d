using Npgsql;

namespace ApiServer.Data.Postgres;

/// <summary>
/// API_SERVER_DATABASE_URL as Npgsql settings: a <c>postgres://user:pass@host:port/db?sslmode=require</c> URL (also
/// <c>postgresql://</c>) or an Npgsql connection string (<c>Host=…;Username=…;Password=…;Database=…</c>). Errors never repeat
/// the value: it holds a password.
/// </summary>
public static class PostgresConnectionString
{
    public const string Allowed =
        "a postgres://user:password@host:port/database URL (postgresql:// too; ?sslmode=disable|prefer|require|verify-ca|verify-full) or an Npgsql connection string with Host (Host=…;Username=…;Password=…;Database=…)";

    /// <summary>The settings, or null with <paramref name="problem"/> saying what is wrong (without the value).</summary>
    public static NpgsqlConnectionStringBuilder? TryParse(string value, out string? problem)
    {
        problem = null;
        var text = value.Trim();
        if (text.Length == 0)
        {
            problem = "it is empty";
            return null;
        }
        return text.Contains("://", StringComparison.Ordinal) ? FromUrl(text, out problem) : FromKeywords(text, out problem);
    }

    /// <summary>Where the database is, for logs and health: user, host, port and database; never the password.</summary>
    public static string Describe(NpgsqlConnectionStringBuilder builder) =>
        $"{builder.Username}@{builder.Host}:{builder.Port}/{builder.Database}";

    private static NpgsqlConnectionStringBuilder? FromUrl(string text, out string? problem)
    {
        problem = null;
        // An unencoded '/', '?' or '#' in the password ends the authority early, so Uri reads part of the password as host,
        // port or database, which would then be shown in logs and health. The user info must be percent-encoded; an '@' after
        // the authority is the sign that it was not.
        var authorityStart = text.IndexOf("://", StringComparison.Ordinal) + 3;
        var authorityEnd = text.IndexOfAny(['/', '?', '#'], authorityStart);
        if (authorityEnd >= 0 && text.IndexOf('@', authorityEnd) >= 0)
        {
            problem = "the URL has an '@' after its host; percent-encode / ? # @ : in the user name and password (%2F %3F %23 %40 %3A)";
            return null;
        }
        if (!Uri.TryCreate(text, UriKind.Absolute, out var uri) || uri.Scheme is not ("postgres" or "postgresql"))
        {
            problem = "a URL must start with postgres:// or postgresql:// and be well formed";
            return null;
        }
        if (uri.Host.Length == 0)
        {
            problem = "the URL names no host";
            return null;
        }
        var database = Uri.UnescapeDataString(uri.AbsolutePath.TrimStart('/'));
        var builder = new NpgsqlConnectionStringBuilder
        {
            Host = uri.Host.Trim('[', ']'),
            Port = uri.IsDefaultPort || uri.Port < 0 ? 5432 : uri.Port,
            Database = database.Length == 0 ? "postgres" : database,
        };
        if (uri.UserInfo.Length > 0)
        {
            var separator = uri.UserInfo.IndexOf(':', StringComparison.Ordinal);
            builder.Username = Uri.UnescapeDataString(separator < 0 ? uri.UserInfo : uri.UserInfo[..separator]);
            if (separator >= 0)
                builder.Password = Uri.UnescapeDataString(uri.UserInfo[(separator + 1)..]);
        }
        foreach (var pair in uri.Query.TrimStart('?').Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            var parts = pair.Split('=', 2);
            var name = Uri.UnescapeDataString(parts[0]);
            var setting = parts.Length == 2 ? Uri.UnescapeDataString(parts[1]) : "";
            if (!string.Equals(name, "sslmode", StringComparison.OrdinalIgnoreCase))
            {
                problem = $"the URL parameter '{name}' is not supported (only sslmode; use a connection string for anything else)";
                return null;
            }
            if (!Enum.TryParse<SslMode>(setting.Replace("-", "", StringComparison.Ordinal), ignoreCase: true, out var mode))
            {
                problem = "sslmode must be disable, allow, prefer, require, verify-ca or verify-full";
                return null;
            }
            builder.SslMode = mode;
        }
        return builder;
    }

    private static NpgsqlConnectionStringBuilder? FromKeywords(string text, out string? problem)
    {
        problem = null;
        NpgsqlConnectionStringBuilder builder;
        try
        {
            builder = new NpgsqlConnectionStringBuilder(text);
        }
        catch (Exception ex) when (ex is ArgumentException or FormatException or InvalidCastException)
        {
            // Npgsql's message can quote the offending value (which may be the password): say only that the string is malformed.
            problem = "it is neither a postgres:// URL nor a connection string Npgsql accepts (a keyword is unknown or a value malformed)";
            return null;
        }
        if (string.IsNullOrWhiteSpace(builder.Host))
        {
            problem = "the connection string names no Host";
            return null;
        }
        return builder;
    }
}
