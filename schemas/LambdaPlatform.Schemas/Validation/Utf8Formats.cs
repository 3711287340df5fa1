using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace LambdaPlatform.Schemas.Validation;

/// <summary>
/// Hand-written parsers for the common shapes of the values on the decode hot path (UUIDs, RFC 3339
/// timestamps, plain decimal numbers), on raw UTF-8. Each one either accepts with exactly the value the
/// general parser (<see cref="System.Buffers.Text.Utf8Parser"/>, <c>Utf8JsonReader.TryGetDateTimeOffset</c>,
/// <c>Utf8JsonReader.TryGetDouble</c>) would give, or returns false meaning "not decided here": the
/// caller then asks the general parser. None of them ever rejects on its own, so their verdicts cannot
/// differ from the general parser's; the tests check the values against it on many generated inputs.
/// </summary>
internal static class Utf8Formats
{
    private const byte Bad = 0xFF;

    private static readonly int[] DaysToMonth365 = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334, 365];
    private static readonly int[] DaysToMonth366 = [0, 31, 60, 91, 121, 152, 182, 213, 244, 274, 305, 335, 366];

    // Exact powers of ten as doubles (all below 2^53, so the division in TryParseDouble is correctly rounded).
    private static readonly double[] Pow10 =
    [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
    ];

    private static readonly long[] FractionScale = [0, 1_000_000, 100_000, 10_000, 1_000, 100, 10, 1];

    /// <summary>Where each byte's two hex digits start in the 8-4-4-4-12 text.</summary>
    private static ReadOnlySpan<byte> UuidPairs => [0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34];

    /// <summary>Hex digit value of each byte, or 0xFF.</summary>
    private static ReadOnlySpan<byte> HexValue =>
    [
        Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad,
        Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad,
        Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad,
        0, 1, 2, 3, 4, 5, 6, 7, 8, 9, Bad, Bad, Bad, Bad, Bad, Bad,
        Bad, 10, 11, 12, 13, 14, 15, Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad,
        Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad,
        Bad, 10, 11, 12, 13, 14, 15, Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad,
        Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad,
        Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad,
        Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad,
        Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad,
        Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad,
        Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad,
        Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad,
        Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad,
        Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad, Bad,
    ];

    /// <summary>
    /// Parses a UUID in 8-4-4-4-12 form (hex digits of either case). True with the value, or false when
    /// the text has another shape (the caller decides with the general parser).
    /// </summary>
    public static bool TryParseUuid(ReadOnlySpan<byte> text, out Guid value)
    {
        if (text.Length != 36 || text[8] != '-' || text[13] != '-' || text[18] != '-' || text[23] != '-')
        {
            value = default;
            return false;
        }

        return Ssse3.IsSupported ? TryParseUuidSsse3(text, out value) : TryParseUuidScalar(text, out value);
    }

    /// <summary>The portable form of <see cref="TryParseUuid"/> (the text is 36 bytes with its four hyphens).</summary>
    internal static bool TryParseUuidScalar(ReadOnlySpan<byte> text, out Guid value)
    {
        Span<byte> bytes = stackalloc byte[16];
        var hex = HexValue;
        var pairs = UuidPairs;
        var bad = 0;
        for (var j = 0; j < 16; j++)
        {
            var at = pairs[j];
            int hi = hex[text[at]];
            int lo = hex[text[at + 1]];
            bad |= hi | lo;
            bytes[j] = (byte)((hi << 4) | lo);
        }

        if (bad > 0xF)
        {
            value = default;
            return false;
        }

        value = new Guid(bytes, bigEndian: true);
        return true;
    }

    /// <summary>
    /// <see cref="TryParseUuid"/> with 16-byte vectors: gather the 32 hex digits into two vectors, turn them
    /// into nibbles, check them all at once, pack pairs into bytes and reorder into <see cref="Guid"/>'s layout.
    /// </summary>
    private static bool TryParseUuidSsse3(ReadOnlySpan<byte> text, out Guid value)
    {
        const byte Z = 0x80; // a shuffle index with the high bit set yields 0
        ref var start = ref MemoryMarshal.GetReference(text);
        var v0 = Vector128.LoadUnsafe(ref start);      // text[0..16)
        var v2 = Vector128.LoadUnsafe(ref start, 2);   // text[2..18)
        var v19 = Vector128.LoadUnsafe(ref start, 19); // text[19..35)
        var v20 = Vector128.LoadUnsafe(ref start, 20); // text[20..36)

        // Digits 0-7, 9-12 and 14-17 of the text, then 19-22 and 24-35.
        var first = Ssse3.Shuffle(v0, Vector128.Create((byte)0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, Z, Z, Z, Z))
            | Ssse3.Shuffle(v2, Vector128.Create(Z, Z, Z, Z, Z, Z, Z, Z, Z, Z, Z, Z, 12, 13, 14, 15));
        var second = Ssse3.Shuffle(v19, Vector128.Create((byte)0, 1, 2, 3, Z, Z, Z, Z, Z, Z, Z, Z, Z, Z, Z, Z))
            | Ssse3.Shuffle(v20, Vector128.Create(Z, Z, Z, Z, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));

        if (!TryNibbles(first, out var high) || !TryNibbles(second, out var low))
        {
            value = default;
            return false;
        }

        // Each byte is (first nibble << 4) | second nibble; then the big-endian UUID bytes are reordered into
        // Guid's little-endian fields (int, short, short, then eight bytes as they are).
        var bytes = Vector128.Narrow(PackPairs(high), PackPairs(low));
        var guid = Ssse3.Shuffle(bytes, Vector128.Create((byte)3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15));
        value = Unsafe.BitCast<Vector128<byte>, Guid>(guid);
        return true;

        static bool TryNibbles(Vector128<byte> chars, out Vector128<byte> nibbles)
        {
            var digit = chars - Vector128.Create((byte)'0');
            var isDigit = Vector128.LessThan(digit, Vector128.Create((byte)10));
            var letter = (chars | Vector128.Create((byte)0x20)) - Vector128.Create((byte)'a'); // 'A'-'F' and 'a'-'f' → 0-5
            var isLetter = Vector128.LessThan(letter, Vector128.Create((byte)6));
            nibbles = Vector128.ConditionalSelect(isDigit, digit, letter + Vector128.Create((byte)10));
            return (isDigit | isLetter) == Vector128<byte>.AllBitsSet;
        }

        static Vector128<ushort> PackPairs(Vector128<byte> nibbles)
        {
            var pairs = nibbles.AsUInt16(); // little-endian: first nibble in the low byte
            return ((pairs << 4) & Vector128.Create((ushort)0xF0)) | (pairs >> 8);
        }
    }

    /// <summary>
    /// Parses the common RFC 3339 shape <c>YYYY-MM-DDThh:mm:ss[.f…](Z|±hh:mm)</c> (1 to 16 fraction digits,
    /// the first 7 kept, as <c>Utf8JsonReader</c> does). True with the value, or false when the text has
    /// any other shape or is out of the plain range (the caller decides with the general parser).
    /// </summary>
    public static bool TryParseDateTime(ReadOnlySpan<byte> text, out DateTimeOffset value)
    {
        value = default;
        if (text.Length is < 20 or > 42
            || text[4] != '-' || text[7] != '-' || text[10] != 'T' || text[13] != ':' || text[16] != ':')
        {
            return false;
        }

        var year = (Digit(text[0]) * 1000) + (Digit(text[1]) * 100) + (Digit(text[2]) * 10) + Digit(text[3]);
        var month = TwoDigits(text, 5);
        var day = TwoDigits(text, 8);
        var hour = TwoDigits(text, 11);
        var minute = TwoDigits(text, 14);
        var second = TwoDigits(text, 17);

        // A non-digit makes its field negative or huge; the range checks below catch both. Years 1 and
        // 9999 are left to the general parser, which knows how offsets there leave DateTime's range.
        if ((uint)(year - 2) > 9996 || (uint)(month - 1) > 11 || (uint)hour > 23 || (uint)minute > 59 || (uint)second > 59)
        {
            return false;
        }

        var days = DateTime.IsLeapYear(year) ? DaysToMonth366 : DaysToMonth365;
        if ((uint)(day - 1) >= (uint)(days[month] - days[month - 1]))
        {
            return false;
        }

        var i = 19;
        long fraction = 0;
        if (text[i] == '.')
        {
            i++;
            var first = i;
            var end = Math.Min(first + 16, text.Length);
            while (i < end && (uint)(text[i] - '0') <= 9)
            {
                if (i - first < 7)
                {
                    fraction = (fraction * 10) + (text[i] - '0');
                }

                i++;
            }

            var count = i - first;
            if (count == 0)
            {
                return false;
            }

            fraction *= FractionScale[Math.Min(count, 7)];
        }

        long offsetTicks;
        var rest = text.Length - i;
        if (rest == 1 && text[i] == 'Z')
        {
            offsetTicks = 0;
        }
        else if (rest == 6 && (text[i] == '+' || text[i] == '-') && text[i + 3] == ':')
        {
            var offsetHours = TwoDigits(text, i + 1);
            var offsetMinutes = TwoDigits(text, i + 4);
            if ((uint)offsetHours > 13 || (uint)offsetMinutes > 59)
            {
                return false;
            }

            offsetTicks = ((offsetHours * 60L) + offsetMinutes) * TimeSpan.TicksPerMinute;
            if (text[i] == '-')
            {
                offsetTicks = -offsetTicks;
            }
        }
        else
        {
            return false;
        }

        var y = year - 1;
        var totalDays = (y * 365) + (y / 4) - (y / 100) + (y / 400) + days[month - 1] + day - 1;
        var ticks = (totalDays * TimeSpan.TicksPerDay) + ((((hour * 60L) + minute) * 60L) + second) * TimeSpan.TicksPerSecond + fraction;
        value = new DateTimeOffset(ticks, new TimeSpan(offsetTicks));
        return true;
    }

    /// <summary>
    /// Parses a JSON number (syntax already checked by the reader) without an exponent and with at most
    /// 15 significant digits. True with the correctly rounded value, or false for any other number.
    /// </summary>
    public static bool TryParseDouble(ReadOnlySpan<byte> text, out double value)
    {
        value = 0;
        var i = 0;
        var negative = false;
        if (text.Length > 0 && text[0] == '-')
        {
            negative = true;
            i = 1;
        }

        ulong mantissa = 0;
        var digits = 0;
        var fractionDigits = -1;
        for (; i < text.Length; i++)
        {
            var d = (uint)(text[i] - '0');
            if (d <= 9)
            {
                mantissa = (mantissa * 10) + d;
                digits++;
                if (fractionDigits >= 0)
                {
                    fractionDigits++;
                }
            }
            else if (text[i] == '.' && fractionDigits < 0)
            {
                fractionDigits = 0;
            }
            else
            {
                return false; // exponent, or not a number
            }
        }

        if (digits is 0 or > 15)
        {
            return false;
        }

        // mantissa < 10^15 < 2^53 and 10^k are exact doubles, so one IEEE division gives the correctly rounded value.
        var result = fractionDigits > 0 ? mantissa / Pow10[fractionDigits] : mantissa;
        value = negative ? -result : result;
        return true;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int Digit(byte b) => b - '0' is var d && (uint)d <= 9 ? d : -10_000;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int TwoDigits(ReadOnlySpan<byte> text, int at) => (Digit(text[at]) * 10) + Digit(text[at + 1]);
}
