using System.Globalization;
using System.IO.Hashing;
using System.Numerics;
using System.Text;

namespace LambdaPlatform.Schemas.Sketches;

/// <summary>
/// HyperLogLog distinct counter with precision 12: 4,096 one-byte registers, standard error
/// 1.04/√4096 ≈ 1.6% (so ~95% of estimates fall within ±3.3%, ~99.7% within ±4.9%), linear counting for
/// small cardinalities (exact-ish below a few hundred). Values are hashed with XXH64 (seed 0) over their
/// UTF-8 bytes, so registers written by different speed-layer instances merge by element-wise max —
/// in C# (<see cref="Merge(HyperLogLog)"/>) and in ClickHouse SQL (<c>maxForEach</c>, see <see cref="SqlEstimate"/>).
/// No library was used because the register layout must be mergeable inside ClickHouse SQL.
/// Not thread-safe.
/// </summary>
public sealed class HyperLogLog
{
    /// <summary>Bits of the hash that pick the register.</summary>
    public const int Precision = 12;

    /// <summary>Number of registers (2^<see cref="Precision"/>).</summary>
    public const int Registers = 1 << Precision;

    /// <summary>Relative standard error of an estimate: 1.04/√m.</summary>
    public static readonly double StandardError = 1.04 / Math.Sqrt(Registers);

    private static readonly double Alpha = 0.7213 / (1 + (1.079 / Registers));

    private readonly byte[] _registers = new byte[Registers];

    /// <summary>The registers (length <see cref="Registers"/>).</summary>
    public ReadOnlySpan<byte> RegisterValues => _registers;

    /// <summary>Adds a string value.</summary>
    public void Add(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        Span<byte> buffer = stackalloc byte[256];
        var hash = value.Length <= 80
            ? XxHash64.HashToUInt64(buffer[..Encoding.UTF8.GetBytes(value, buffer)])
            : XxHash64.HashToUInt64(Encoding.UTF8.GetBytes(value));
        AddHash(hash);
    }

    /// <summary>Adds a number (hashed as its shortest round-trip text, so batch SQL can hash the same text).</summary>
    public void Add(double value) => Add(value.ToString("R", CultureInfo.InvariantCulture));

    /// <summary>Adds a 64-bit hash of a value.</summary>
    public void AddHash(ulong hash)
    {
        var index = (int)(hash >> (64 - Precision));
        var rest = (hash << Precision) | (1UL << (Precision - 1)); // the guard bit caps the rank at 64 - p + 1
        var rank = (byte)(BitOperations.LeadingZeroCount(rest) + 1);
        if (rank > _registers[index])
        {
            _registers[index] = rank;
        }
    }

    /// <summary>Merges another sketch into this one (element-wise max).</summary>
    public void Merge(HyperLogLog other)
    {
        ArgumentNullException.ThrowIfNull(other);
        Merge(other._registers);
    }

    /// <summary>Merges registers (e.g. read back from ClickHouse) into this one.</summary>
    public void Merge(ReadOnlySpan<byte> registers)
    {
        if (registers.Length != Registers)
        {
            throw new ArgumentException($"expected {Registers} registers, got {registers.Length}", nameof(registers));
        }

        for (var i = 0; i < Registers; i++)
        {
            if (registers[i] > _registers[i])
            {
                _registers[i] = registers[i];
            }
        }
    }

    /// <summary>The estimated number of distinct values added.</summary>
    public ulong Estimate() => Estimate(_registers);

    /// <summary>The estimate for a register array; the same formula as <see cref="SqlEstimate"/>.</summary>
    public static ulong Estimate(ReadOnlySpan<byte> registers)
    {
        double sum = 0;
        var zeros = 0;
        foreach (var r in registers)
        {
            sum += Math.Pow(2, -r);
            if (r == 0)
            {
                zeros++;
            }
        }

        var m = (double)Registers;
        var raw = Alpha * m * m / sum;
        var estimate = zeros > 0 && raw <= 2.5 * m ? m * Math.Log(m / zeros) : raw;
        return (ulong)Math.Round(estimate);
    }

    /// <summary>
    /// ClickHouse SQL (18.16 and later) estimating the cardinality of a merged register array
    /// <paramref name="registers"/> (e.g. <c>maxForEach(users_hll)</c>): the same formula as <see cref="Estimate(ReadOnlySpan{byte})"/>.
    /// </summary>
    public static string SqlEstimate(string registers)
    {
        var m = Registers.ToString(CultureInfo.InvariantCulture);
        var alpha = Alpha.ToString("R", CultureInfo.InvariantCulture);
        var zeros = $"countEqual({registers}, 0)";
        var raw = $"({alpha} * {m} * {m} / arraySum(arrayMap(x -> pow(2, -x), {registers})))";
        return $"toUInt64(round(if({zeros} > 0 AND {raw} <= 2.5 * {m}, {m} * log({m} / {zeros}), {raw})))";
    }
}
