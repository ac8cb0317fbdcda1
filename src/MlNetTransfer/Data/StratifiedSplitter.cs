namespace MlNetTransfer.Data;

/// <summary>Per-class seeded split: each class keeps its share in both parts, and the same seed gives the same split.</summary>
internal static class StratifiedSplitter
{
    /// <param name="images">The images to split.</param>
    /// <param name="heldFraction">Share of each class held out.</param>
    /// <param name="seed">Seed of the per-class shuffles.</param>
    /// <param name="minKept">Fewest images a class keeps (a class with fewer than <paramref name="minKept"/> + 1 holds none out).</param>
    public static (List<LabeledImage> Train, List<LabeledImage> Held) Split(IReadOnlyList<LabeledImage> images, double heldFraction, int seed, int minKept = 1)
    {
        if (heldFraction is < 0 or >= 1)
            throw new ArgumentOutOfRangeException(nameof(heldFraction), "must be in [0, 1)");
        var train = new List<LabeledImage>();
        var held = new List<LabeledImage>();
        foreach (var group in images.GroupBy(i => i.Label).OrderBy(g => g.Key, StringComparer.Ordinal))
        {
            var items = group.OrderBy(i => i.Path, StringComparer.Ordinal).ToArray();
            // System.Random with a seed is stable across runtimes and platforms (legacy seeded algorithm).
            new Random(HashCode(seed, group.Key)).Shuffle(items);
            int nHeld = items.Length <= minKept ? 0 : Math.Clamp((int)Math.Round(items.Length * heldFraction), heldFraction > 0 ? 1 : 0, items.Length - minKept);
            held.AddRange(items.Take(nHeld));
            train.AddRange(items.Skip(nHeld));
        }
        return (train, held);
    }

    /// <summary>A per-class seed that does not depend on string.GetHashCode (randomized per process).</summary>
    private static int HashCode(int seed, string label)
    {
        unchecked
        {
            int h = seed * 486187739;
            foreach (var c in label)
                h = h * 31 + c;
            return h;
        }
    }
}
