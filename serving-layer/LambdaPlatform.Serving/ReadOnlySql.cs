namespace LambdaPlatform.Serving;

/// <summary>
/// Decides whether an analyst's SQL is a single read: one statement, starting with SELECT, WITH, SHOW,
/// DESCRIBE/DESC, EXISTS or EXPLAIN; no function that reaches outside the database (file, url, remote, s3 …,
/// dictionary functions such as dictGet);
/// no INTO OUTFILE; no system table that holds credentials or other users' queries (system.users,
/// system.grants, system.named_collections, system.processes, system.query_log …); no SHOW of users, grants or
/// the process list; and a SETTINGS clause only as the last clause, naming only harmless settings. Works on the
/// token stream (string literals, quoted identifiers and comments are skipped), so a keyword inside a string is
/// not mistaken for one; where ClickHouse's lexer and this one could differ, this one sees more tokens, never
/// fewer. This is the first line of defence: <see cref="Enforce"/> also makes the backend run the query with
/// <c>readonly = 1</c>.
/// </summary>
public static class ReadOnlySql
{
    private static readonly HashSet<string> ReadVerbs = new(StringComparer.OrdinalIgnoreCase) { "SELECT", "WITH", "SHOW", "DESCRIBE", "DESC", "EXISTS", "EXPLAIN" };

    private static readonly HashSet<string> ForbiddenFunctions = new(StringComparer.OrdinalIgnoreCase)
    {
        "file", "fileCluster", "url", "urlCluster", "remote", "remoteSecure", "cluster", "clusterAllReplicas", "s3", "s3Cluster", "gcs", "oss", "cosn",
        "hdfs", "hdfsCluster", "azureBlobStorage", "azureBlobStorageCluster", "mysql", "postgresql", "mongodb", "redis", "sqlite", "jdbc", "odbc",
        "executable", "input", "iceberg", "icebergS3", "icebergAzure", "icebergHDFS", "icebergLocal", "icebergCluster", "icebergS3Cluster",
        "icebergAzureCluster", "icebergHDFSCluster", "deltaLake", "deltaLakeCluster", "deltaLakeAzure", "deltaLakeLocal", "hudi", "hudiCluster",
        "paimon", "arrowFlight", "arrowflight", "ytsaurus", "fuzzJSON", "fuzzQuery", "dictionary", "view", "merge", "catboostEvaluate", "modelEvaluate",
    };

    /// <summary>System tables that hold credentials, grants, secrets or other users' queries.</summary>
    private static readonly HashSet<string> SecretSystemTables = new(StringComparer.OrdinalIgnoreCase)
    {
        "users", "grants", "roles", "role_grants", "current_roles", "enabled_roles", "quotas", "quota_limits", "quota_usage", "quotas_usage",
        "row_policies", "settings_profiles", "settings_profile_elements", "named_collections", "user_directories", "user_processes", "processes",
        "query_log", "query_thread_log", "query_views_log", "text_log", "session_log", "trace_log", "crash_log", "stack_trace", "zookeeper",
        "zookeeper_connection", "zookeeper_log", "server_settings", "certificates", "backups", "dictionaries", "asynchronous_insert_log",
        "processors_profile_log", "blob_storage_log", "s3queue", "s3queue_log", "azure_queue", "azure_queue_log", "filesystem_cache_log",
    };

    /// <summary>What SHOW may show: tables, databases, columns, indexes, functions, engines, and the DDL of a table or view.</summary>
    private static readonly HashSet<string> ShowObjects = new(StringComparer.OrdinalIgnoreCase)
    {
        "TABLES", "DATABASES", "COLUMNS", "FULL", "EXTENDED", "INDEX", "INDEXES", "INDICES", "KEYS", "FUNCTIONS", "ENGINES", "TEMPORARY", "CREATE",
        "DICTIONARIES",
    };

    private static readonly HashSet<string> ShowCreateObjects = new(StringComparer.OrdinalIgnoreCase) { "TABLE", "VIEW", "DATABASE", "TEMPORARY" };

    /// <summary>Settings an analyst may put in the SETTINGS clause: limits and output shape, nothing that widens access.</summary>
    private static readonly HashSet<string> AllowedSettings = new(StringComparer.OrdinalIgnoreCase)
    {
        "max_threads", "max_execution_time", "max_result_rows", "max_result_bytes", "result_overflow_mode", "max_rows_to_read", "max_bytes_to_read",
        "read_overflow_mode", "max_rows_to_group_by", "group_by_overflow_mode", "max_block_size", "join_use_nulls", "timeout_overflow_mode",
        "output_format_json_quote_64bit_integers", "output_format_json_quote_denormals", "date_time_output_format", "extremes", "use_query_cache",
    };

    /// <summary>Returns null when <paramref name="sql"/> is a single read, else why it is refused.</summary>
    public static string? Check(string? sql) => Analyze(sql).Refusal;

    /// <summary>
    /// <paramref name="sql"/> (which <see cref="Check"/> accepted) with <c>readonly = 1</c> added to its SETTINGS clause (or a
    /// new one), so that even a statement the checks missed cannot write or change settings further.
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="sql"/> is refused by <see cref="Check"/>.</exception>
    public static string Enforce(string sql)
    {
        var analysis = Analyze(sql);
        if (analysis.Refusal is { } refusal)
        {
            throw new ArgumentException(refusal, nameof(sql));
        }

        // Cut at the final ';' (and anything after it, a comment at most); a new line ends a trailing "-- comment".
        var body = analysis.TerminatorAt is { } at ? sql[..at] : sql;
        return body.TrimEnd() + (analysis.HasSettings ? "\n, readonly = 1" : "\nSETTINGS readonly = 1");
    }

    private readonly record struct Analysis(string? Refusal, bool HasSettings, int? TerminatorAt);

    private enum Kind
    {
        None,
        Word,
        QuotedName,
        Punctuation,
        String,
    }

    private readonly record struct Token(string Text, int Start, Kind Kind)
    {
        /// <summary>A name: a bare word or a quoted identifier (ClickHouse resolves both the same way).</summary>
        public bool IsName(HashSet<string> names) => Kind is Kind.Word or Kind.QuotedName && names.Contains(Text);

        public bool IsName(string name) => Kind is Kind.Word or Kind.QuotedName && Text.Equals(name, StringComparison.OrdinalIgnoreCase);

        public bool IsKeyword(string keyword) => Kind == Kind.Word && Text.Equals(keyword, StringComparison.OrdinalIgnoreCase);

        public bool IsKeyword(HashSet<string> keywords) => Kind == Kind.Word && keywords.Contains(Text);

        public bool Is(string punctuation) => Kind == Kind.Punctuation && Text == punctuation;
    }

    private static Analysis Analyze(string? sql)
    {
        if (string.IsNullOrWhiteSpace(sql))
        {
            return Refuse("the query is empty");
        }

        if (sql.Length > 100_000)
        {
            return Refuse("the query is longer than 100,000 characters");
        }

        var tokens = Tokenize(sql, out var error);
        if (error is not null)
        {
            return Refuse(error);
        }

        if (tokens.Count == 0)
        {
            return Refuse("the query is empty");
        }

        if (!tokens[0].IsKeyword(ReadVerbs))
        {
            return Refuse($"only reads are allowed (SELECT, WITH, SHOW, DESCRIBE, EXISTS, EXPLAIN), not '{Shown(tokens[0].Text)}'");
        }

        int? terminator = null;
        if (tokens[^1].Is(";"))
        {
            terminator = tokens[^1].Start;
            tokens.RemoveAt(tokens.Count - 1);
        }

        if (tokens[0].IsKeyword("SHOW") && ShowRefusal(tokens) is { } showRefusal)
        {
            return Refuse(showRefusal);
        }

        var hasSettings = false;
        var depth = 0;
        for (var i = 0; i < tokens.Count; i++)
        {
            var token = tokens[i];
            var next = i + 1 < tokens.Count ? tokens[i + 1] : default;
            if (token.Is(";"))
            {
                return Refuse("only one statement per request is allowed");
            }

            if (token.Is("("))
            {
                depth++;
            }
            else if (token.Is(")"))
            {
                depth--;
            }

            if (next.Is("(") && token.IsName(ForbiddenFunctions))
            {
                return Refuse($"the function '{token.Text}' is not allowed: it reaches outside the database");
            }

            // Dictionaries load from their source (a file, a URL, another database) when first used.
            if (next.Is("(") && token.Kind is Kind.Word or Kind.QuotedName && token.Text.StartsWith("dict", StringComparison.OrdinalIgnoreCase))
            {
                return Refuse($"the dictionary function '{token.Text}' is not allowed: dictionaries read from outside the database");
            }

            if (token.IsName("system") && next.Is(".") && i + 2 < tokens.Count && tokens[i + 2].IsName(SecretSystemTables))
            {
                return Refuse($"system.{tokens[i + 2].Text} is not readable here: it holds credentials, grants or other users' queries");
            }

            if (token.IsKeyword("INTO") && next.IsKeyword("OUTFILE"))
            {
                return Refuse("INTO OUTFILE is not allowed");
            }

            if (token.IsKeyword("FORMAT") && i > 0 && !next.Is("("))
            {
                return Refuse("put the output format in the request's 'format' field, not in the SQL");
            }

            if (token.IsKeyword("SETTINGS") && !(i > 0 && tokens[i - 1].Is(".")) && !next.Is("."))
            {
                if (SettingsRefusal(tokens, i + 1, depth) is { } settingsRefusal)
                {
                    return Refuse(settingsRefusal);
                }

                hasSettings = true;
                break; // SettingsRefusal checked that the clause runs to the end.
            }
        }

        return new Analysis(null, hasSettings, terminator);
    }

    private static Analysis Refuse(string why) => new(why, false, null);

    private static string? ShowRefusal(List<Token> tokens)
    {
        const string allowed = "allowed: SHOW TABLES, DATABASES, COLUMNS, INDEXES, FUNCTIONS, ENGINES, DICTIONARIES, CREATE TABLE/VIEW/DATABASE";
        if (tokens.Count < 2 || !tokens[1].IsKeyword(ShowObjects))
        {
            return tokens.Count < 2 ? $"SHOW what? ({allowed})" : $"SHOW {Shown(tokens[1].Text)} is not allowed here ({allowed})";
        }

        if (tokens[1].IsKeyword("CREATE") && (tokens.Count < 3 || !tokens[2].IsKeyword(ShowCreateObjects)))
        {
            // Not SHOW CREATE USER / ROLE / QUOTA / ROW POLICY / SETTINGS PROFILE / NAMED COLLECTION (credentials).
            return $"SHOW CREATE {(tokens.Count < 3 ? "" : Shown(tokens[2].Text) + " ")}is not allowed here ({allowed})";
        }

        return null;
    }

    /// <summary>Checks <c>name = value, …</c> from <paramref name="start"/>: only allowed names, at the top level, up to the end.</summary>
    private static string? SettingsRefusal(List<Token> tokens, int start, int depth)
    {
        if (depth != 0)
        {
            return "SETTINGS is allowed only as the last clause of the whole query";
        }

        var i = start;
        while (true)
        {
            if (i >= tokens.Count)
            {
                return "SETTINGS needs at least one 'name = value'";
            }

            var name = tokens[i];
            if (!name.IsName(AllowedSettings))
            {
                return $"the setting '{Shown(name.Text)}' cannot be changed here (allowed: {string.Join(", ", AllowedSettings.Order(StringComparer.Ordinal))})";
            }

            if (i + 2 >= tokens.Count || !tokens[i + 1].Is("="))
            {
                return $"write the setting as '{Shown(name.Text)} = value'";
            }

            i += 2;
            if (tokens[i].Is("-"))
            {
                i++;
            }

            i++; // the value
            if (i == tokens.Count)
            {
                return null;
            }

            if (!tokens[i].Is(","))
            {
                return "SETTINGS must be the last clause of the query";
            }

            i++;
        }
    }

    private static string Shown(string text) => text.Length > 64 ? text[..64] + "…" : text;

    /// <summary>Words, numbers and punctuation of <paramref name="sql"/> with their positions; comments are dropped, literals kept as a placeholder.</summary>
    private static List<Token> Tokenize(string sql, out string? error)
    {
        error = null;
        var tokens = new List<Token>();
        var i = 0;
        while (i < sql.Length)
        {
            var c = sql[i];
            if (char.IsWhiteSpace(c))
            {
                i++;
            }
            else if (c == '-' && i + 1 < sql.Length && sql[i + 1] == '-' || c == '#' && i + 1 < sql.Length && sql[i + 1] is ' ' or '!')
            {
                // ClickHouse: "--" and "# " / "#!" comment to the end of the line (any other '#' stays a token, so
                // nothing after it can hide from these checks).
                while (i < sql.Length && sql[i] != '\n')
                {
                    i++;
                }
            }
            else if (c == '/' && i + 1 < sql.Length && sql[i + 1] == '*')
            {
                // Ends at the first "*/": ClickHouse nests comments and ends later, so it never sees a token this misses.
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

                tokens.Add(c == '\'' ? new Token("'…'", i, Kind.String) : new Token(sql[(i + 1)..j], i, Kind.QuotedName));
                i = j + 1;
            }
            else if (char.IsLetterOrDigit(c) || c == '_' || c == '$')
            {
                var j = i;
                while (j < sql.Length && (char.IsLetterOrDigit(sql[j]) || sql[j] == '_' || sql[j] == '$'))
                {
                    j++;
                }

                tokens.Add(new Token(sql[i..j], i, Kind.Word));
                i = j;
            }
            else
            {
                tokens.Add(new Token(c.ToString(), i, Kind.Punctuation));
                i++;
            }
        }

        return tokens;
    }
}
