using System.Security.Cryptography;
using System.Text;

namespace LambdaPlatform.Serving.Security;

/// <summary>
/// The API keys that the HTTP API accepts. Only SHA-256 digests of the keys are kept, and a presented key is
/// compared with every configured one in constant time (the digest hides the length too), so neither timing nor a
/// memory dump of this object reveals a key. <see cref="ToString"/> says how many keys there are, never which.
/// </summary>
/// <remarks>
/// Keys come from configuration or the environment, never from code: <see cref="EnvironmentVariable"/>
/// (comma-separated) and/or a keys file (<see cref="FileEnvironmentVariable"/> or <c>lambda up --api-keys-file</c>:
/// one key a line, blank lines and lines starting with <c>#</c> ignored). A key is 16 to 512 printable ASCII
/// characters without spaces or commas. Immutable and thread-safe.
/// </remarks>
public sealed class ApiKeys
{
    /// <summary>Environment variable with comma-separated keys: <c>LAMBDA_API_KEYS</c>.</summary>
    public const string EnvironmentVariable = "LAMBDA_API_KEYS";

    /// <summary>Environment variable naming a keys file: <c>LAMBDA_API_KEYS_FILE</c>.</summary>
    public const string FileEnvironmentVariable = "LAMBDA_API_KEYS_FILE";

    /// <summary>Shortest accepted key, in characters: 16.</summary>
    public const int MinLength = 16;

    /// <summary>Longest accepted key, in characters: 512.</summary>
    public const int MaxLength = 512;

    private readonly byte[][] digests;

    private ApiKeys(byte[][] digests) => this.digests = digests;

    /// <summary>No keys: the API is open.</summary>
    public static ApiKeys None { get; } = new([]);

    /// <summary>True when no key is configured (the API is then open to anyone who reaches it).</summary>
    public bool IsEmpty => digests.Length == 0;

    /// <summary>How many keys are configured.</summary>
    public int Count => digests.Length;

    /// <summary>The keys in <paramref name="keys"/>; duplicates are kept once.</summary>
    /// <exception cref="ArgumentException">A key is too short, too long or has characters a header cannot carry; the message says which key by position, not its value.</exception>
    public static ApiKeys From(IEnumerable<string> keys)
    {
        ArgumentNullException.ThrowIfNull(keys);
        var list = new List<byte[]>();
        var position = 0;
        foreach (var key in keys)
        {
            position++;
            if (key is null || key.Length is < MinLength or > MaxLength)
            {
                throw new ArgumentException($"API key #{position} must be {MinLength} to {MaxLength} characters long (it is {key?.Length ?? 0})", nameof(keys));
            }

            if (key.Any(c => c is <= ' ' or > '~' or ','))
            {
                throw new ArgumentException($"API key #{position} must be printable ASCII without spaces or commas", nameof(keys));
            }

            var digest = Digest(key);
            if (!list.Any(d => d.AsSpan().SequenceEqual(digest)))
            {
                list.Add(digest);
            }
        }

        return list.Count == 0 ? None : new ApiKeys([.. list]);
    }

    /// <summary>
    /// The keys of <paramref name="commaSeparated"/> (e.g. the value of <see cref="EnvironmentVariable"/>) plus those in
    /// the file <paramref name="filePath"/>; either may be null or empty.
    /// </summary>
    /// <exception cref="ArgumentException">A key is invalid, or the file cannot be read (the message names the file).</exception>
    public static ApiKeys Load(string? commaSeparated, string? filePath)
    {
        var keys = new List<string>();
        if (!string.IsNullOrWhiteSpace(commaSeparated))
        {
            keys.AddRange(commaSeparated.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries));
        }

        if (!string.IsNullOrWhiteSpace(filePath))
        {
            string[] lines;
            try
            {
                lines = File.ReadAllLines(filePath);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new ArgumentException($"cannot read the API keys file '{filePath}': {e.Message}", nameof(filePath), e);
            }

            keys.AddRange(lines.Select(l => l.Trim()).Where(l => l.Length > 0 && !l.StartsWith('#')));
        }

        return From(keys);
    }

    /// <summary>True when <paramref name="presented"/> is one of the keys. Constant time in the key's content and length.</summary>
    public bool Matches(string? presented)
    {
        if (presented is null || presented.Length > MaxLength)
        {
            return false;
        }

        var digest = Digest(presented);
        var found = false;

        // Every key is compared, so the time does not tell which one (or whether one) matched.
        foreach (var expected in digests)
        {
            found |= CryptographicOperations.FixedTimeEquals(digest, expected);
        }

        return found;
    }

    /// <summary>How many keys there are; never a key.</summary>
    public override string ToString() => IsEmpty ? "no API keys" : $"{Count} API key(s)";

    private static byte[] Digest(string key) => SHA256.HashData(Encoding.UTF8.GetBytes(key));
}
