using System.Buffers.Binary;
using System.Globalization;
using MlNetTransfer.Data;

namespace MlNetTransfer.Featurization;

/// <summary>What a view of an image is.</summary>
internal enum ViewKind
{
    /// <summary>The image as the saved model sees it.</summary>
    Plain,

    /// <summary>The plain view flipped left-right (the L-BFGS head's augmentation).</summary>
    Mirror,

    /// <summary>A random resized crop (and a random flip where allowed), drawn from the image's own seeded stream.</summary>
    Crop,
}

/// <summary>One view: its kind, and for a crop its index, seed and whether it may flip. <see cref="Key"/> names it in the store.</summary>
internal readonly record struct ViewSpec(ViewKind Kind, int Index = 0, int Seed = 0, bool Flip = true)
{
    public static readonly ViewSpec Plain = new(ViewKind.Plain);

    public string Key => Kind switch
    {
        ViewKind.Plain => "plain",
        ViewKind.Mirror => "mirror",
        _ => string.Create(CultureInfo.InvariantCulture, $"crop{Index}-s{Seed}{(Flip ? "" : "-noflip")}"),
    };

    /// <summary>
    /// The random stream of this crop of this image: a fixed mix of the seed, the image's content hash and the crop's index,
    /// so an image's views do not depend on which other images are in the run or in which order.
    /// </summary>
    public Random CropRandom(string contentHash)
    {
        ulong h = 14695981039346656037UL;
        foreach (var c in contentHash.AsSpan(0, Math.Min(16, contentHash.Length)))
            h = (h ^ c) * 1099511628211UL;
        h ^= (ulong)(uint)Seed * 0x9E3779B97F4A7C15UL;
        h ^= (ulong)(uint)Index * 0xC2B2AE3D27D4EB4FUL;
        h ^= h >> 29;
        return new Random((int)(h & 0x7fffffff));
    }
}

/// <summary>
/// The views wanted of each image: the plain one first, then a mirror and/or <see cref="Crops"/> crops.
/// Held-out images get the plain view only (<see cref="PlainOnly"/>).
/// </summary>
internal sealed record ViewPlan(bool Mirror, int Crops, bool CropFlip, int Seed)
{
    public static readonly ViewPlan PlainOnly = new(false, 0, false, 0);

    // Computed on each read: a property initialized once would keep the old views in a copy made with `with`.
    public IReadOnlyList<ViewSpec> Views => Make(Mirror, Crops, CropFlip, Seed);

    public int Count => Views.Count;

    private static List<ViewSpec> Make(bool mirror, int crops, bool flip, int seed)
    {
        var views = new List<ViewSpec> { ViewSpec.Plain };
        if (mirror)
            views.Add(new ViewSpec(ViewKind.Mirror));
        for (int k = 0; k < crops; k++)
            views.Add(new ViewSpec(ViewKind.Crop, k, seed, flip));
        return views;
    }
}

/// <summary>An image and its views' values at a cut of the graph (pooled features, or freeze-boundary activations), in plan order.</summary>
internal sealed record ImageViews(LabeledImage Image, string ContentHash, ViewValues Views)
{
    public ImageViews(LabeledImage image, string contentHash, float[][] views)
        : this(image, contentHash, ViewValues.InMemory(views))
    {
    }

    public float[] Plain => Views[0];
}

/// <summary>Views of a set of images at one cut: what decoded, what did not (and why), and where the values came from.</summary>
internal sealed record ViewSet(IReadOnlyList<ImageViews> Images, int[] Shape, IReadOnlyList<SkippedFile> Unreadable, IReadOnlyList<SkippedFile> Warnings)
{
    public static ViewSet Empty(int[] shape) => new([], shape, [], []);

    /// <summary>Floats per view.</summary>
    public int Length => Shape.Aggregate(1, (a, b) => a * b);

    /// <summary>Images whose every view came from the store (the graph did not run for them).</summary>
    public int FromStore { get; init; }

    /// <summary>Images the graph ran on (for at least one view).</summary>
    public int Computed { get; init; }

    /// <summary>Views the graph ran on.</summary>
    public int ViewsComputed { get; init; }

    /// <summary>Process memory the values take.</summary>
    public long Bytes => Images.Sum(i => i.Views.MemoryBytes);

    /// <summary>Bytes of a spill file the values take (<see cref="ViewStorage"/>).</summary>
    public long DiskBytes => Images.Sum(i => i.Views.DiskBytes);

    /// <summary>This set and <paramref name="other"/> (same cut), in that order.</summary>
    public ViewSet Concat(ViewSet other) => new(Images.Concat(other.Images).ToList(), Shape, Unreadable.Concat(other.Unreadable).ToList(), Warnings.Concat(other.Warnings).ToList());

    /// <summary>The images of this set that <paramref name="keep"/> selects, in this set's order (no counts: they describe a featurizing run).</summary>
    public ViewSet Subset(Func<ImageViews, bool> keep) => new(Images.Where(keep).ToList(), Shape, [], []);

    /// <summary>Only the plain view of each image.</summary>
    public ViewSet PlainOnly() => new(Images.Select(i => i with { Views = i.Views.Take(1) }).ToList(), Shape, Unreadable, Warnings);
}
