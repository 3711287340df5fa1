using System.Globalization;

namespace LambdaPlatform.ClickHouse;

/// <summary>The value kinds <see cref="IClickHouse.InsertAsync(string, IReadOnlyList{ClickHouseColumn}, IEnumerable{object[]}, CancellationToken)"/> accepts (see its XML doc).</summary>
internal enum RowBinaryKind
{
    String,
    Int8,
    Int16,
    Int32,
    Int64,
    UInt8,
    UInt16,
    UInt32,
    UInt64,
    Float32,
    Float64,
    DateTime,
    DateTime64,
    Date,
    Uuid,
}

/// <summary>One insert column resolved to how its values are checked and encoded.</summary>
/// <param name="Name">Column name.</param>
/// <param name="Type">ClickHouse type as given by the caller.</param>
/// <param name="Kind">Value kind.</param>
/// <param name="IsNullable">True for <c>Nullable(T)</c>.</param>
/// <param name="Precision">Sub-second digits of <c>DateTime64(p)</c>; 0 otherwise.</param>
/// <param name="IsArray">True for <c>Array(T)</c>: <see cref="Kind"/> is then the kind of the elements.</param>
internal sealed record RowBinaryColumn(string Name, string Type, RowBinaryKind Kind, bool IsNullable, int Precision, bool IsArray = false)
{
    /// <summary>The CLR type a non-null value of this column must have (<c>T[]</c> for <c>Array(T)</c>).</summary>
    public Type ClrType { get; } = IsArray ? ElementClrType(Kind).MakeArrayType() : ElementClrType(Kind);

    private static Type ElementClrType(RowBinaryKind kind) => kind switch
    {
        RowBinaryKind.String => typeof(string),
        RowBinaryKind.Int8 => typeof(sbyte),
        RowBinaryKind.Int16 => typeof(short),
        RowBinaryKind.Int32 => typeof(int),
        RowBinaryKind.Int64 => typeof(long),
        RowBinaryKind.UInt8 => typeof(byte),
        RowBinaryKind.UInt16 => typeof(ushort),
        RowBinaryKind.UInt32 => typeof(uint),
        RowBinaryKind.UInt64 => typeof(ulong),
        RowBinaryKind.Float32 => typeof(float),
        RowBinaryKind.Float64 => typeof(double),
        RowBinaryKind.DateTime or RowBinaryKind.DateTime64 => typeof(DateTime),
        RowBinaryKind.Date => typeof(DateOnly),
        RowBinaryKind.Uuid => typeof(Guid),
        _ => throw new InvalidOperationException(kind.ToString()),
    };
}

/// <summary>
/// Resolves insert columns and checks boxed row values against the contract of <see cref="IClickHouse.InsertAsync(string, IReadOnlyList{ClickHouseColumn}, IEnumerable{object[]}, CancellationToken)"/>;
/// <see cref="RowBinaryWriter"/> encodes them. Both backends check values with it, so a row is accepted or rejected the
/// same way whichever backend runs.
/// </summary>
internal static class RowBinary
{
    private const string Supported = "String, (U)Int8/16/32/64, Float32/64, DateTime, DateTime64(p), Date, UUID, Nullable(T), Array(T) of String, (U)Int8/16/32/64, Float32/64";

    /// <summary>The Unix epoch in <see cref="DateTime.Ticks"/>.</summary>
    internal static readonly long EpochTicks = DateTime.UnixEpoch.Ticks;

    /// <summary>The Unix epoch as a <see cref="DateOnly.DayNumber"/> (Date 0).</summary>
    internal static readonly int EpochDayNumber = DateOnly.FromDateTime(DateTime.UnixEpoch).DayNumber;

    private static readonly DateTime MaxDateTime = DateTime.UnixEpoch.AddSeconds(uint.MaxValue);
    private static readonly DateOnly MaxDate = DateOnly.FromDayNumber(EpochDayNumber + ushort.MaxValue);

    /// <summary>Resolves <paramref name="columns"/>; throws <see cref="ArgumentException"/> naming an unsupported type.</summary>
    public static RowBinaryColumn[] Resolve(IReadOnlyList<ClickHouseColumn> columns)
    {
        ArgumentNullException.ThrowIfNull(columns);
        if (columns.Count == 0)
        {
            throw new ArgumentException("An insert needs at least one column.", nameof(columns));
        }

        var result = new RowBinaryColumn[columns.Count];
        for (var i = 0; i < columns.Count; i++)
        {
            var column = columns[i] ?? throw new ArgumentException($"Column {i} is null.", nameof(columns));
            ArgumentException.ThrowIfNullOrWhiteSpace(column.Name, nameof(columns));
            result[i] = ResolveType(column.Name, column.Type);
        }

        return result;
    }

    private static RowBinaryColumn ResolveType(string name, string type)
    {
        var text = (type ?? string.Empty).Trim();
        if (text.StartsWith("Array(", StringComparison.Ordinal) && text.EndsWith(')'))
        {
            var element = ResolveType(name, text["Array(".Length..^1]);
            return element is { IsNullable: false, IsArray: false, Kind: not (RowBinaryKind.DateTime or RowBinaryKind.DateTime64 or RowBinaryKind.Date or RowBinaryKind.Uuid) }
                ? new RowBinaryColumn(name, type!, element.Kind, IsNullable: false, Precision: 0, IsArray: true)
                : throw Unsupported(name, type);
        }

        var nullable = false;
        if (text.StartsWith("Nullable(", StringComparison.Ordinal) && text.EndsWith(')'))
        {
            nullable = true;
            text = text["Nullable(".Length..^1].Trim();
        }

        var precision = 0;
        RowBinaryKind? kind = text switch
        {
            "String" => RowBinaryKind.String,
            "Int8" => RowBinaryKind.Int8,
            "Int16" => RowBinaryKind.Int16,
            "Int32" => RowBinaryKind.Int32,
            "Int64" => RowBinaryKind.Int64,
            "UInt8" => RowBinaryKind.UInt8,
            "UInt16" => RowBinaryKind.UInt16,
            "UInt32" => RowBinaryKind.UInt32,
            "UInt64" => RowBinaryKind.UInt64,
            "Float32" => RowBinaryKind.Float32,
            "Float64" => RowBinaryKind.Float64,
            "Date" => RowBinaryKind.Date,
            "UUID" => RowBinaryKind.Uuid,
            "DateTime" => RowBinaryKind.DateTime,
            _ => null,
        };

        if (kind is null && text.StartsWith("DateTime(", StringComparison.Ordinal) && text.EndsWith(')'))
        {
            kind = RowBinaryKind.DateTime; // DateTime('tz'): the value is still seconds since the epoch
        }
        else if (kind is null && text.StartsWith("DateTime64(", StringComparison.Ordinal) && text.EndsWith(')'))
        {
            var arguments = text["DateTime64(".Length..^1];
            var comma = arguments.IndexOf(',', StringComparison.Ordinal);
            var digits = (comma < 0 ? arguments : arguments[..comma]).Trim();
            if (int.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out precision) && precision <= 9)
            {
                kind = RowBinaryKind.DateTime64;
            }
        }

        return kind is { } k
            ? new RowBinaryColumn(name, type!, k, nullable, precision)
            : throw Unsupported(name, type);
    }

    private static ArgumentException Unsupported(string name, string? type) =>
        new($"Column '{name}' has type '{type}', which InsertAsync does not support (supported: {Supported}).", nameof(type));

    /// <summary>
    /// Checks one row against <paramref name="columns"/> and returns the row to encode: the same array, or a copy
    /// where <see cref="DateTime"/> values were normalised to UTC (Local is converted, Unspecified is taken as UTC).
    /// </summary>
    /// <exception cref="ArgumentException">The row has the wrong width or a value of the wrong type or range.</exception>
    public static object?[] Check(RowBinaryColumn[] columns, object?[] row, long rowIndex)
    {
        if (row is null || row.Length != columns.Length)
        {
            throw new ArgumentException($"Row {rowIndex} has {row?.Length.ToString(CultureInfo.InvariantCulture) ?? "no"} values; the insert has {columns.Length} columns.", nameof(row));
        }

        object?[]? copy = null;
        for (var i = 0; i < columns.Length; i++)
        {
            var column = columns[i];
            var value = row[i];
            if (value is null)
            {
                if (!column.IsNullable)
                {
                    throw new ArgumentException($"Row {rowIndex}, column '{column.Name}' ({column.Type}) is null but the column is not Nullable.", nameof(row));
                }

                continue;
            }

            if (value.GetType() != column.ClrType)
            {
                throw new ArgumentException($"Row {rowIndex}, column '{column.Name}' ({column.Type}) expects {column.ClrType.Name} but got {value.GetType().Name}.", nameof(row));
            }

            if (column.IsArray)
            {
                if (value is string?[] strings && Array.IndexOf(strings, null) is var at && at >= 0)
                {
                    throw new ArgumentException($"Row {rowIndex}, column '{column.Name}' ({column.Type}): element {at} is null; array elements cannot be null.", nameof(row));
                }

                continue;
            }

            switch (column.Kind)
            {
                case RowBinaryKind.DateTime or RowBinaryKind.DateTime64:
                    var dateTime = (DateTime)value;
                    var utc = ToUtc(dateTime);
                    if (column.Kind == RowBinaryKind.DateTime)
                    {
                        CheckDateTime(column, utc, rowIndex);
                    }

                    if (utc.Kind != dateTime.Kind)
                    {
                        copy ??= (object?[])row.Clone();
                        copy[i] = utc;
                    }

                    break;
                case RowBinaryKind.Date:
                    CheckDate(column, (DateOnly)value, rowIndex);

                    break;
            }
        }

        return copy ?? row;
    }

    /// <summary>Throws <see cref="ArgumentException"/> unless <paramref name="utc"/> fits a DateTime column (1970-01-01..2106-02-07 UTC).</summary>
    public static void CheckDateTime(RowBinaryColumn column, DateTime utc, long rowIndex)
    {
        if (utc < DateTime.UnixEpoch || utc > MaxDateTime)
        {
            throw RowError($"Row {rowIndex}, column '{column.Name}': {utc:O} is outside DateTime's range 1970-01-01..2106-02-07.");
        }
    }

    /// <summary>Throws <see cref="ArgumentException"/> unless <paramref name="date"/> fits a Date column (1970-01-01..2149-06-06).</summary>
    public static void CheckDate(RowBinaryColumn column, DateOnly date, long rowIndex)
    {
        if (date.DayNumber < EpochDayNumber || date > MaxDate)
        {
            throw RowError($"Row {rowIndex}, column '{column.Name}': {date:O} is outside Date's range 1970-01-01..{MaxDate:O}.");
        }
    }

    /// <summary>The exception for a row that breaks the insert contract (the caller's rows, or its row writer).</summary>
    public static ArgumentException RowError(string message, string paramName = "row") => new(message, paramName);

    /// <summary>A value the contract calls UTC: Local is converted, Unspecified is taken as UTC.</summary>
    public static DateTime ToUtc(DateTime value) => value.Kind switch
    {
        DateTimeKind.Utc => value,
        DateTimeKind.Local => value.ToUniversalTime(),
        _ => DateTime.SpecifyKind(value, DateTimeKind.Utc),
    };
}
