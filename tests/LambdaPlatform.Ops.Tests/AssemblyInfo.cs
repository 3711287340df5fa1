// Each test class starts a platform on embedded chDB, which allows one data folder per process at a time.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
