using System.Runtime.CompilerServices;

// The hand-written parsers are internal; their tests compare them with the framework's parsers directly.
[assembly: InternalsVisibleTo("LambdaPlatform.Schemas.Tests")]
