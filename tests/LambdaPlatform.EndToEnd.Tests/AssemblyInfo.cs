// Each test class starts a whole platform on its own chDB data path, and chDB opens one data path per process at a
// time: the classes must run one after another.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
