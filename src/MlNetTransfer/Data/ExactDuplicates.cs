using System.Collections.Concurrent;
using MlNetTransfer.Featurization;

namespace MlNetTransfer.Data;

/// <summary>
/// Byte-identical images, found by content (SHA-256, the key of the activation cache): a file listed twice, or copied
/// into validation, makes the validation figures measure memory, and one photo under two labels teaches both. Each
/// content is used once: the first of a split in ordinal path order stays, and a copy of a training image is left out
/// of validation and test (a copy of a validation image out of test); the rest join the skipped list, with the reason.
/// </summary>
internal static class ExactDuplicates
{
    /// <summary>Warnings that name files one by one, at most; the rest are counted (each is in the skipped list).</summary>
    private const int Named = 10;

    /// <summary>
    /// <paramref name="dataset"/> with each content once, and the warnings to show (two labels on one image; copies
    /// across splits; files listed twice). Files that cannot be read, or are larger than
    /// <see cref="ImageValidationOptions.MaxFileBytes"/>, are compared by path only: the decoder rejects them later, naming why.
    /// </summary>
    /// <param name="dataset">The data as read.</param>
    /// <param name="checks">The size limits (no larger file is read whole).</param>
    /// <param name="findings">Where each copy left out is also recorded as a data-check finding (null: not recorded).</param>
    public static (ImageDataset Dataset, IReadOnlyList<string> Warnings) Remove(ImageDataset dataset, ImageValidationOptions checks,
        List<Training.DataFinding>? findings = null)
    {
        var hashes = new ConcurrentDictionary<string, string?>(StringComparer.Ordinal);
        Parallel.ForEach(dataset.All.Select(i => i.Path).Distinct(StringComparer.Ordinal), path => hashes[path] = Hash(path, checks.MaxFileBytes));
        string Key(LabeledImage image) => hashes[image.Path] is { } hash ? "sha256:" + hash : "path:" + image.Path;

        var first = new Dictionary<string, (LabeledImage Image, DatasetSplit Split)>(StringComparer.Ordinal);
        var skipped = new List<SkippedFile>();
        var labels = new List<string>();
        var crossSplit = new List<string>();
        var repeated = new List<string>();
        var kept = new Dictionary<DatasetSplit, List<LabeledImage>>();
        foreach (var split in new[] { DatasetSplit.Train, DatasetSplit.Validation, DatasetSplit.Test })
        {
            var images = dataset.Get(split);
            var drop = new HashSet<int>();
            foreach (var index in Enumerable.Range(0, images.Count).OrderBy(k => images[k].Path, StringComparer.Ordinal))
            {
                var image = images[index];
                if (first.TryAdd(Key(image), (image, split)))
                    continue;
                var (original, originalSplit) = first[Key(image)];
                drop.Add(index);
                string reason;
                if (original.Label != image.Label)
                {
                    reason = $"same content as {original.Path} (class '{original.Label}', {Name(originalSplit)}) but labelled '{image.Label}': only the first is used";
                    labels.Add($"{image.Path} (class '{image.Label}') and {original.Path} (class '{original.Label}') are the same image under two labels: only {original.Path} is used, as '{original.Label}'");
                }
                else if (originalSplit != split)
                {
                    reason = $"same content as {original.Path}, a {Name(originalSplit)} image: left out of {Name(split)}, so that no image is in two splits";
                    crossSplit.Add($"{image.Path} ({Name(split)}, same content as {original.Path} in {Name(originalSplit)})");
                }
                else
                {
                    reason = image.Path == original.Path ? $"listed twice: same content as {original.Path}, which is used once" : $"same content as {original.Path}";
                    repeated.Add(image.Path == original.Path ? $"{image.Path} (listed twice)" : $"{image.Path} (same content as {original.Path})");
                }
                skipped.Add(new SkippedFile(image.Path, reason));
                // Two splits is the louder finding (the figure is inflated) even where the labels differ too.
                var kind = originalSplit != split ? Training.DataFindingKind.Leakage
                    : original.Label != image.Label ? Training.DataFindingKind.Conflict : Training.DataFindingKind.Redundant;
                findings?.Add(new Training.DataFinding(kind, image.Path, image.Label, split)
                {
                    Exact = true, OtherPath = original.Path, OtherLabel = original.Label, OtherSplit = originalSplit, Similarity = 1, Dropped = true,
                });
            }
            kept[split] = images.Where((_, k) => !drop.Contains(k)).ToList();
        }
        if (skipped.Count == 0)
            return (dataset, []);

        var warnings = labels.Take(Named).ToList();
        if (labels.Count > Named)
            warnings.Add($"{labels.Count - Named} more image(s) are the same as another under a different label (listed as skipped)");
        if (crossSplit.Count > 0)
            warnings.Add($"{crossSplit.Count} image(s) are copies of images in an earlier split and are left out of validation/test, so the figures are not measured on training data: {List(crossSplit)}");
        if (repeated.Count > 0)
            warnings.Add($"{repeated.Count} image(s) appear more than once in a split and are used once: {List(repeated)}");
        var result = new ImageDataset(dataset.Source, dataset.SplitOrigin, kept[DatasetSplit.Train], kept[DatasetSplit.Validation], kept[DatasetSplit.Test],
            dataset.Skipped.Concat(skipped).ToList());
        return (result, warnings);
    }

    private static string List(List<string> items) =>
        string.Join("; ", items.Take(Named)) + (items.Count > Named ? $"; and {items.Count - Named} more (listed as skipped)" : "");

    private static string Name(DatasetSplit split) => split switch
    {
        DatasetSplit.Train => "training",
        DatasetSplit.Validation => "validation",
        _ => "test",
    };

    /// <summary>The content hash, streamed and capped; null where the file cannot (or must not) be read whole.</summary>
    private static string? Hash(string path, long maxBytes)
    {
        try
        {
            if (RegularFile.NotRegular(path) is not null)
                return null;
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan);
            if (stream.Length > maxBytes)
                return null;
            using var capped = new CappedStream(stream, maxBytes);
            return ContentHash.Of(capped);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }
}
