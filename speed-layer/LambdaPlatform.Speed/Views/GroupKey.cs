namespace LambdaPlatform.Speed.Views;

/// <summary>A real-time group: bucket start (ticks), Kafka partition and up to four dimension values.</summary>
internal readonly record struct GroupKey(long Bucket, int Partition, string? D0, string? D1, string? D2, string? D3);
