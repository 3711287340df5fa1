using System.Buffers.Text;
using System.Globalization;
using System.Text;
using System.Text.Json;
using LambdaPlatform.Schemas.Validation;

namespace LambdaPlatform.Schemas.Tests;

/// <summary>
/// The hand-written UUID, date-time and number parsers on the decode hot path must give exactly the
/// framework's values whenever they accept, and must leave every other input to the framework. Checked on
/// many generated inputs, valid and corrupted, against Utf8Parser, Utf8JsonReader and DateTimeOffset.
/// </summary>
public sealed class Utf8FormatsTests
{
    private static readonly string[] RoundTripFormats =
    [
        "yyyy-MM-dd'T'HH:mm:ssK", "yyyy-MM-dd'T'HH:mm:ss.FFFFFFFK",
    ];

    [Fact]
    public void TryParseDateTime_MatchesUtf8JsonReader_OnGeneratedTimestamps()
    {
        var random = new Random(20261128);
        int fast = 0, accepted = 0;
        for (var i = 0; i < 200_000; i++)
        {
            var text = RandomTimestamp(random);
            var utf8 = Encoding.UTF8.GetBytes(text);
            var reference = ReaderDateTimeOffset(utf8, out var expected);
            if (Utf8Formats.TryParseDateTime(utf8, out var actual))
            {
                fast++;
                Assert.True(reference, $"'{text}': fast path accepted what Utf8JsonReader refuses");
                Assert.True(expected.EqualsExact(actual), $"'{text}': fast {actual:O}, reader {expected:O}");
            }

            if (reference)
            {
                accepted++;
            }

            // The public check (fast path + fallback + offset rule) against the rule as first written.
            Assert.Equal(LegacyIsDateTime(utf8, out var legacy), IsDateTime(utf8, out var value));
            Assert.True(legacy.EqualsExact(value), $"'{text}': {value:O} vs {legacy:O}");
        }

        Assert.True(fast > 50_000 && accepted > fast, $"fast={fast} accepted={accepted}: the corpus must exercise both paths");
    }

    [Fact]
    public void TryParseDateTime_MatchesDateTimeOffsetParseExact_OnRfc3339Shapes()
    {
        var random = new Random(5);
        for (var i = 0; i < 50_000; i++)
        {
            var offset = random.Next(3) == 0 ? TimeSpan.Zero : TimeSpan.FromMinutes(random.Next(-13 * 60, 13 * 60 + 1));
            var ticks = random.NextInt64(new DateTime(1900, 1, 1).Ticks, new DateTime(2200, 1, 1).Ticks);
            var value = new DateTimeOffset(ticks, offset);
            var format = random.Next(3) switch
            {
                0 => "yyyy-MM-dd'T'HH:mm:ss",
                1 => "yyyy-MM-dd'T'HH:mm:ss.fff",
                _ => "yyyy-MM-dd'T'HH:mm:ss.fffffff",
            };
            var text = value.ToString(format, CultureInfo.InvariantCulture) + (offset == TimeSpan.Zero && random.Next(2) == 0 ? "Z" : value.ToString("zzz", CultureInfo.InvariantCulture));

            Assert.True(Utf8Formats.TryParseDateTime(Encoding.UTF8.GetBytes(text), out var actual), text);
            Assert.True(DateTimeOffset.TryParseExact(text, RoundTripFormats, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var expected), text);
            Assert.True(expected.EqualsExact(actual), $"'{text}': fast {actual:O}, ParseExact {expected:O}");
        }
    }

    [Theory]
    [InlineData("2024-02-29T23:59:59.9999999Z")]
    [InlineData("2000-01-01T00:00:00+13:59")]
    [InlineData("2000-01-01T00:00:00-13:59")]
    [InlineData("2026-11-28T19:00:00.1234567890123456Z")]
    [InlineData("2026-11-28T19:00:00.5+01:00")]
    public void TryParseDateTime_Accepts_CommonEdgeShapes(string text)
    {
        var utf8 = Encoding.UTF8.GetBytes(text);
        Assert.True(Utf8Formats.TryParseDateTime(utf8, out var actual));
        Assert.True(ReaderDateTimeOffset(utf8, out var expected));
        Assert.True(expected.EqualsExact(actual));
    }

    [Theory]
    [InlineData("2023-02-29T00:00:00Z")] // not a leap year
    [InlineData("2026-11-28T24:00:00Z")]
    [InlineData("2026-11-28T19:60:00Z")]
    [InlineData("2026-11-28T19:00:60Z")]
    [InlineData("2026-11-28T19:00:00z")]
    [InlineData("2026-11-28t19:00:00Z")]
    [InlineData("2026-11-28T19:00:00.Z")] // the reader accepts this; the fast path leaves it to the reader
    [InlineData("2026-11-28T19:00:00+14:00")]
    [InlineData("2026-11-28T19:00:00+02")]
    [InlineData("2026-11-28T19:00Z")]
    [InlineData("0001-01-01T00:00:00+01:00")]
    [InlineData("9999-12-31T23:59:59-01:00")]
    [InlineData("2026-11-28T19:00:00")]
    [InlineData("2026-11-28T19:00:00.12345678901234567Z")]
    public void TryParseDateTime_LeavesToReader_UnusualOrInvalidShapes(string text)
    {
        Assert.False(Utf8Formats.TryParseDateTime(Encoding.UTF8.GetBytes(text), out _));
    }

    [Fact]
    public void TryParseUuid_MatchesUtf8Parser_OnGeneratedText()
    {
        var random = new Random(3);
        var fast = 0;
        for (var i = 0; i < 100_000; i++)
        {
            var text = Guid.NewGuid().ToString(random.Next(4) == 0 ? "N" : "D");
            text = random.Next(3) switch
            {
                0 => text.ToUpperInvariant(),
                1 => string.Concat(text.Select(c => random.Next(2) == 0 ? char.ToUpperInvariant(c) : c)),
                _ => text,
            };
            var utf8 = Encoding.UTF8.GetBytes(text);
            if (random.Next(3) == 0)
            {
                utf8[random.Next(utf8.Length)] = (byte)"0123456789abcdefABCDEFgG-{} \u00e9x/:@`"[random.Next(30)];
            }

            Guid expected = default;
            var reference = utf8.Length == 36 && Utf8Parser.TryParse(utf8, out expected, out var consumed, 'D') && consumed == 36;
            Guid portable = default;
            var scalar = utf8.Length == 36 && utf8[8] == '-' && utf8[13] == '-' && utf8[18] == '-' && utf8[23] == '-'
                && Utf8Formats.TryParseUuidScalar(utf8, out portable);
            Assert.Equal(reference, scalar);
            if (Utf8Formats.TryParseUuid(utf8, out var actual))
            {
                fast++;
                Assert.True(reference, Encoding.UTF8.GetString(utf8));
                Assert.Equal(expected, actual);
                Assert.Equal(expected, portable);
            }
            else
            {
                Assert.False(reference, Encoding.UTF8.GetString(utf8)); // every valid UUID takes the fast path
            }
        }

        Assert.True(fast > 30_000, $"fast={fast}");
    }

    [Fact]
    public void TryParseDouble_MatchesUtf8JsonReader_OnGeneratedNumbers()
    {
        var random = new Random(9);
        var fast = 0;
        for (var i = 0; i < 200_000; i++)
        {
            var text = RandomNumber(random);
            var utf8 = Encoding.UTF8.GetBytes(text);
            var reader = new Utf8JsonReader(utf8);
            reader.Read();
            Assert.Equal(JsonTokenType.Number, reader.TokenType);
            Assert.True(reader.TryGetDouble(out var expected), text);
            if (Utf8Formats.TryParseDouble(utf8, out var actual))
            {
                fast++;
                Assert.True(BitConverter.DoubleToInt64Bits(expected) == BitConverter.DoubleToInt64Bits(actual), $"'{text}': fast {actual:R}, reader {expected:R}");
            }
        }

        Assert.True(fast > 100_000, $"fast={fast}");
    }

    private static string RandomTimestamp(Random random)
    {
        var year = random.Next(10) switch
        {
            0 => random.Next(0, 10_000),
            1 => random.Next(2) == 0 ? random.Next(0, 3) : random.Next(9997, 10_000),
            _ => random.Next(1990, 2100),
        };
        var month = random.Next(20) == 0 ? random.Next(0, 14) : random.Next(1, 13);
        var day = random.Next(10) == 0 ? random.Next(0, 33) : random.Next(27, 32);
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture, $"{year:D4}-{month:D2}-{day:D2}");
        sb.Append(random.Next(50) == 0 ? 't' : 'T');
        sb.Append(CultureInfo.InvariantCulture, $"{Two(random, 24)}:{Two(random, 60)}");
        if (random.Next(20) != 0)
        {
            sb.Append(CultureInfo.InvariantCulture, $":{Two(random, 60)}");
            if (random.Next(3) != 0)
            {
                sb.Append('.');
                var digits = random.Next(10) == 0 ? random.Next(0, 19) : random.Next(1, 8);
                for (var d = 0; d < digits; d++)
                {
                    sb.Append((char)('0' + random.Next(10)));
                }
            }
        }

        switch (random.Next(8))
        {
            case 0:
            case 1:
            case 2:
                sb.Append(random.Next(30) == 0 ? 'z' : 'Z');
                break;
            case 3:
            case 4:
            case 5:
                sb.Append(random.Next(2) == 0 ? '+' : '-');
                sb.Append(CultureInfo.InvariantCulture, $"{(random.Next(10) == 0 ? random.Next(0, 100) : random.Next(0, 15)):D2}");
                if (random.Next(10) != 0)
                {
                    sb.Append(CultureInfo.InvariantCulture, $":{(random.Next(10) == 0 ? random.Next(0, 100) : random.Next(0, 60)):D2}");
                }

                break;
            case 6:
                break; // no offset
            default:
                sb.Append(" +x"[random.Next(3)]);
                break;
        }

        var text = sb.ToString();
        if (random.Next(10) == 0)
        {
            var chars = text.ToCharArray();
            chars[random.Next(chars.Length)] = "0123456789-:T.Z+ a/"[random.Next(19)];
            text = new string(chars);
        }

        return text;
    }

    private static string Two(Random random, int below) =>
        (random.Next(20) == 0 ? random.Next(0, 100) : random.Next(0, below)).ToString("D2", CultureInfo.InvariantCulture);

    private static string RandomNumber(Random random)
    {
        switch (random.Next(8))
        {
            case 0:
                return random.NextInt64(-1_000_000_000_000, 1_000_000_000_000).ToString(CultureInfo.InvariantCulture);
            case 1:
                return random.Next(-1000, 100_000).ToString(CultureInfo.InvariantCulture);
            case 2:
                return Math.Round(random.NextDouble() * 100_000, random.Next(0, 4)).ToString("0.##", CultureInfo.InvariantCulture);
            case 3:
                return (random.NextDouble() * Math.Pow(10, random.Next(-10, 20)) * (random.Next(2) == 0 ? -1 : 1)).ToString("R", CultureInfo.InvariantCulture);
            case 4:
                return BitConverter.Int64BitsToDouble(random.NextInt64() & 0x7FEF_FFFF_FFFF_FFFF).ToString("R", CultureInfo.InvariantCulture);
            case 5:
                return new[] { "0", "-0", "0.0", "-0.0", "0.000", "1.0", "0.1", "0.3", "999999999999999", "9999999999999999", "0.000000000000001", "123456789012345.6" }[random.Next(12)];
            default:
                var sb = new StringBuilder();
                if (random.Next(3) == 0)
                {
                    sb.Append('-');
                }

                var intDigits = random.Next(1, 12);
                sb.Append(intDigits == 1 ? (char)('0' + random.Next(10)) : (char)('1' + random.Next(9)));
                for (var d = 1; d < intDigits; d++)
                {
                    sb.Append((char)('0' + random.Next(10)));
                }

                var fracDigits = random.Next(0, 12);
                if (fracDigits > 0)
                {
                    sb.Append('.');
                    for (var d = 0; d < fracDigits; d++)
                    {
                        sb.Append((char)('0' + random.Next(10)));
                    }
                }

                return sb.ToString();
        }
    }

    private static bool ReaderDateTimeOffset(byte[] utf8, out DateTimeOffset value)
    {
        var reader = StringReader(utf8);
        return reader.TryGetDateTimeOffset(out value);
    }

    private static bool IsDateTime(byte[] utf8, out DateTimeOffset value)
    {
        var reader = StringReader(utf8);
        return SchemaValidator.IsDateTime(ref reader, out value);
    }

    /// <summary>The date-time rule as it was before the fast path: the reader's parser plus an explicit offset.</summary>
    private static bool LegacyIsDateTime(byte[] utf8, out DateTimeOffset value)
    {
        var reader = StringReader(utf8);
        if (!reader.TryGetDateTimeOffset(out value))
        {
            return false;
        }

        ReadOnlySpan<byte> span = utf8;
        if (span.Length < 11)
        {
            return false;
        }

        if (span[^1] is (byte)'Z' or (byte)'z')
        {
            return true;
        }

        var timeStart = span.IndexOfAny((byte)'T', (byte)'t');
        return timeStart > 0 && span.Length - 6 > timeStart && span[^3] == (byte)':' && (span[^6] == (byte)'+' || span[^6] == (byte)'-');
    }

    private static Utf8JsonReader StringReader(byte[] utf8)
    {
        var json = new byte[utf8.Length + 2];
        json[0] = (byte)'"';
        utf8.CopyTo(json, 1);
        json[^1] = (byte)'"';
        var reader = new Utf8JsonReader(json);
        reader.Read();
        return reader;
    }
}
