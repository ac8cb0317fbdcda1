using System.Collections;

namespace MlNetTransfer.Featurization;

/// <summary>
/// The values of one image's views at a cut of the graph, in plan order (view 0 the plain one): arrays in memory, or
/// a slice of a <see cref="ViewSpillFile"/>, read back on demand. Consumers copy a view into a batch with
/// <see cref="CopyTo"/>; the indexer gives a view as an array (the array itself in memory, a fresh copy from disk).
/// </summary>
internal abstract class ViewValues : IReadOnlyList<float[]>
{
    /// <summary>Views of the image.</summary>
    public abstract int Count { get; }

    /// <summary>Floats per view.</summary>
    public abstract int Length { get; }

    /// <summary>Bytes of process memory the values take (0 when they are on disk).</summary>
    public abstract long MemoryBytes { get; }

    /// <summary>Bytes of the spill file the values take (0 when they are in memory).</summary>
    public abstract long DiskBytes { get; }

    public abstract float[] this[int view] { get; }

    /// <summary>Writes view <paramref name="view"/> into <paramref name="target"/> (<see cref="Length"/> floats).</summary>
    public abstract void CopyTo(int view, Span<float> target);

    /// <summary>The first <paramref name="count"/> views (e.g. only the plain one).</summary>
    public abstract ViewValues Take(int count);

    public static ViewValues InMemory(float[][] views) => new Arrays(views);

    public IEnumerator<float[]> GetEnumerator()
    {
        for (int v = 0; v < Count; v++)
            yield return this[v];
    }

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    private sealed class Arrays(float[][] views) : ViewValues
    {
        public override int Count => views.Length;

        public override int Length => views.Length == 0 ? 0 : views[0].Length;

        public override long MemoryBytes => (long)views.Length * Length * sizeof(float);

        public override long DiskBytes => 0;

        public override float[] this[int view] => views[view];

        public override void CopyTo(int view, Span<float> target) => views[view].CopyTo(target);

        public override ViewValues Take(int count) => count == views.Length ? this : new Arrays(views[..count]);
    }
}
