using System.IO.Hashing;
using System.Text;

namespace LambdaPlatform.Speed.Views;

/// <summary>Turns UTF-8 text into strings, reusing one string per distinct value (dimension values repeat a lot). Bounded. Not thread-safe.</summary>
internal sealed class Utf8Interner(int maxEntries = 100_000)
{
    private readonly Dictionary<ulong, (byte[] Utf8, string Text)> _entries = [];

    public string Intern(ReadOnlySpan<byte> utf8)
    {
        var hash = XxHash3.HashToUInt64(utf8);
        if (_entries.TryGetValue(hash, out var entry) && entry.Utf8.AsSpan().SequenceEqual(utf8))
        {
            return entry.Text;
        }

        var text = Encoding.UTF8.GetString(utf8);
        if (_entries.Count < maxEntries)
        {
            _entries.TryAdd(hash, (utf8.ToArray(), text));
        }

        return text;
    }
}
