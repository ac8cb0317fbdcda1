// Training runs use every core; two at once on a 2-core machine run ~6x slower, not 2x. One test at a time.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
