namespace LambdaPlatform.Serving;

/// <summary>
/// Decides whether an analyst's SQL is a single read: one statement, starting with SELECT, WITH, SHOW,
/// DESCRIBE/DESC, EXISTS or EXPLAIN, using no table function that reaches outside the database (file,
/// url, remote, s3 …) and no INTO OUTFILE. Works on the token stream (string literals, quoted
/// identifiers and comments are skipped), so a keyword inside a string is not mistaken for one. This is
/// the first line of defence; the backend also runs the query with <c>readonly</c> set.
/// </summary>
public static class ReadOnlySql
{
    private static readonly HashSet<string> ReadVerbs = new(StringComparer.OrdinalIgnoreCase) { "SELECT", "WITH", "SHOW", "DESCRIBE", "DESC", "EXISTS", "EXPLAIN" };

    private static readonly HashSet<string> ForbiddenFunctions = new(StringComparer.OrdinalIgnoreCase)
    {
        "file", "url", "urlCluster", "remote", "remoteSecure", "cluster", "clusterAllReplicas", "s3", "s3Cluster", "gcs", "hdfs", "hdfsCluster",
        "azureBlobStorage", "azureBlobStorageCluster", "mysql", "postgresql", "mongodb", "redis", "sqlite", "jdbc", "odbc", "executable",
        "input", "iceberg", "icebergS3", "deltaLake", "hudi", "fuzzJSON", "fileCluster", "dictionary", "view", "merge",
    };

    /// <summary>Returns null when <paramref name="sql"/> is a single read, else why it is refused.</summary>
    public static string? Check(string? sql)
    {
        if (string.IsNullOrWhiteSpace(sql))
        {
            return "the query is empty";
        }

        if (sql.Length > 100_000)
        {
            return "the query is longer than 100,000 characters";
        }

        var tokens = Tokenize(sql, out var error);
        if (error is not null)
        {
            return error;
        }

        if (tokens.Count == 0)
        {
            return "the query is empty";
        }

        if (!ReadVerbs.Contains(tokens[0]))
        {
            return $"only reads are allowed (SELECT, WITH, SHOW, DESCRIBE, EXISTS, EXPLAIN), not '{tokens[0]}'";
        }

        for (var i = 0; i < tokens.Count; i++)
        {
            var token = tokens[i];
            if (token == ";")
            {
                if (i != tokens.Count - 1)
                {
                    return "only one statement per request is allowed";
                }

                continue;
            }

            if (i + 1 < tokens.Count && tokens[i + 1] == "(" && ForbiddenFunctions.Contains(token))
            {
                return $"the table function '{token}' is not allowed: it reads outside the database";
            }

            if (token.Equals("INTO", StringComparison.OrdinalIgnoreCase) && i + 1 < tokens.Count && tokens[i + 1].Equals("OUTFILE", StringComparison.OrdinalIgnoreCase))
            {
                return "INTO OUTFILE is not allowed";
            }

            if (token.Equals("FORMAT", StringComparison.OrdinalIgnoreCase) && i > 0)
            {
                return "put the output format in the request's 'format' field, not in the SQL";
            }
        }

        return null;
    }

    /// <summary>Words, numbers and punctuation of <paramref name="sql"/>; literals and comments are dropped.</summary>
    private static List<string> Tokenize(string sql, out string? error)
    {
        error = null;
        var tokens = new List<string>();
        var i = 0;
        while (i < sql.Length)
        {
            var c = sql[i];
            if (char.IsWhiteSpace(c))
            {
                i++;
            }
            else if (c == '-' && i + 1 < sql.Length && sql[i + 1] == '-' || c == '#')
            {
                while (i < sql.Length && sql[i] != '\n')
                {
                    i++;
                }
            }
            else if (c == '/' && i + 1 < sql.Length && sql[i + 1] == '*')
            {
                var end = sql.IndexOf("*/", i + 2, StringComparison.Ordinal);
                if (end < 0)
                {
                    error = "unterminated comment";
                    return tokens;
                }

                i = end + 2;
            }
            else if (c is '\'' or '"' or '`')
            {
                // String literal or quoted identifier; backslash and doubled quotes escape.
                var j = i + 1;
                while (j < sql.Length && sql[j] != c)
                {
                    j += sql[j] == '\\' ? 2 : 1;
                }

                if (j >= sql.Length)
                {
                    error = "unterminated quoted text";
                    return tokens;
                }

                tokens.Add(c == '\'' ? "'…'" : sql[(i + 1)..j]);
                i = j + 1;
            }
            else if (char.IsLetterOrDigit(c) || c == '_' || c == '$')
            {
                var j = i;
                while (j < sql.Length && (char.IsLetterOrDigit(sql[j]) || sql[j] == '_' || sql[j] == '$'))
                {
                    j++;
                }

                tokens.Add(sql[i..j]);
                i = j;
            }
            else
            {
                tokens.Add(c.ToString());
                i++;
            }
        }

        return tokens;
    }
}
