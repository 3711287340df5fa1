using System.Globalization;
using System.Text;

namespace LambdaPlatform.Schemas.Views;

/// <summary>
/// The one text form of a scalar value, used wherever a value is read as text (dimensions, filters, distinct,
/// top-k) on both sides. Strings are themselves; booleans are <c>true</c>/<c>false</c>; a number is written the
/// way ClickHouse's <c>toString(Float64)</c> writes it, so the batch SQL reads the same text: the shortest digits that
/// round-trip, in plain notation for 1e-6 ≤ |x| &lt; 1e21 (<c>2</c>, not <c>2.0</c>; <c>0.000001</c>;
/// <c>100000000000000000000</c>) and otherwise <c>d.ddde±x</c> without a plus sign (<c>1e21</c>, <c>1.5e-7</c>);
/// zero, negative or not, is <c>0</c>.
/// A missing dimension groups under <see cref="MissingDimension"/>.
/// </summary>
public static class FieldText
{
    /// <summary>The dimension value of an event whose field is missing or null: the empty string, on both sides.</summary>
    public const string MissingDimension = "";

    /// <summary>Text of a boolean.</summary>
    public static string Boolean(bool value) => value ? "true" : "false";

    /// <summary>Text of a number, as ClickHouse's <c>toString(Float64)</c> writes it.</summary>
    public static string Number(double value)
    {
        if (double.IsNaN(value))
        {
            return "nan";
        }

        if (double.IsInfinity(value))
        {
            return value > 0 ? "inf" : "-inf";
        }

        if (value == 0)
        {
            // Also -0: JSON's -0 is an integer zero to ClickHouse but a negative zero to .NET; FieldSql writes both as 0.
            return "0";
        }

        // .NET's "R" gives the shortest round-trip digits; only the layout differs from ClickHouse's.
        var r = value.ToString("R", CultureInfo.InvariantCulture);
        var negative = r[0] == '-';
        var body = negative ? r.AsSpan(1) : r.AsSpan();
        var e = body.IndexOfAny('E', 'e');
        var mantissa = e < 0 ? body : body[..e];
        var exponent = e < 0 ? 0 : int.Parse(body[(e + 1)..], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture);
        var point = mantissa.IndexOf('.');
        var digits = new StringBuilder(20);
        foreach (var c in mantissa)
        {
            if (c != '.')
            {
                digits.Append(c);
            }
        }

        // value = 0.d1d2…dk × 10^n
        var n = (point < 0 ? mantissa.Length : point) + exponent;
        var lead = 0;
        while (lead < digits.Length - 1 && digits[lead] == '0')
        {
            lead++;
            n--;
        }

        var d = digits.ToString(lead, digits.Length - lead).TrimEnd('0');
        var k = d.Length;
        var sb = new StringBuilder(32);
        if (negative)
        {
            sb.Append('-');
        }

        if (k <= n && n <= 21)
        {
            sb.Append(d).Append('0', n - k);
        }
        else if (n > 0 && n <= 21)
        {
            sb.Append(d, 0, n).Append('.').Append(d, n, k - n);
        }
        else if (n > -6 && n <= 0)
        {
            sb.Append("0.").Append('0', -n).Append(d);
        }
        else
        {
            sb.Append(d[0]);
            if (k > 1)
            {
                sb.Append('.').Append(d, 1, k - 1);
            }

            sb.Append('e').Append((n - 1).ToString(CultureInfo.InvariantCulture));
        }

        return sb.ToString();
    }
}
