namespace MlNetTransfer.Data;

/// <summary>
/// Reads labelled images from a folder-per-class tree (<c>root/&lt;label&gt;/*.jpg</c>, optionally under <c>train/</c>,
/// <c>val/</c> or <c>validation/</c>, <c>test/</c>) or from a CSV/TSV manifest (<c>path,label[,split]</c>).
/// </summary>
public static class ImageDatasetLoader
{
    private static readonly Dictionary<string, DatasetSplit> SplitFolders = new(StringComparer.OrdinalIgnoreCase)
    {
        ["train"] = DatasetSplit.Train,
        ["val"] = DatasetSplit.Validation,
        ["validation"] = DatasetSplit.Validation,
        ["test"] = DatasetSplit.Test,
    };

    /// <summary>
    /// Loads a folder or manifest and, when <paramref name="requireTrainable"/>, checks that it can be trained on. Without
    /// split folders (or a split column) every image is a training image.
    /// </summary>
    public static ImageDataset Load(string path, DatasetOptions? options = null, bool requireTrainable = true)
    {
        options ??= new DatasetOptions();
        var full = Path.GetFullPath(path);
        ImageDataset dataset;
        if (File.Exists(full))
            dataset = ManifestReader.Read(full, options);
        else if (Directory.Exists(full))
            dataset = ReadFolder(full, options);
        else
            throw new DatasetException($"{full}: no such folder or manifest file.");
        if (requireTrainable)
            dataset.EnsureTrainable(options.MinImagesPerClass);
        else if (!dataset.All.Any())
            throw new DatasetException($"{full}: no images found (supported: {string.Join(", ", ImageFileCheck.Extensions)}).");
        return dataset;
    }

    private static ImageDataset ReadFolder(string root, DatasetOptions options)
    {
        var subfolders = SafeDirectories(root);
        var splitDirs = subfolders.Where(d => SplitFolders.ContainsKey(Path.GetFileName(d))).ToList();
        var skipped = new List<SkippedFile>();

        if (splitDirs.Count == 0)
        {
            // One pool of labelled images: all of it is training data; the trainer holds out what it needs to choose.
            return new ImageDataset(root, ImageDataset.NoSplits, ReadClassFolders(root, skipped), [], [], skipped);
        }

        if (!splitDirs.Any(d => SplitFolders[Path.GetFileName(d)] == DatasetSplit.Train))
            throw new DatasetException($"{root}: has {string.Join(", ", splitDirs.Select(Path.GetFileName))}/ but no train/ folder.");
        foreach (var other in subfolders.Except(splitDirs))
            skipped.Add(new SkippedFile(other, "folder beside the split folders (train/, val/, test/) is not read"));
        foreach (var file in SafeFiles(root))
            skipped.Add(new SkippedFile(file, "file beside the split folders is not in a class folder"));

        var splits = new Dictionary<DatasetSplit, List<LabeledImage>> { [DatasetSplit.Train] = [], [DatasetSplit.Validation] = [], [DatasetSplit.Test] = [] };
        foreach (var dir in splitDirs.Order(StringComparer.Ordinal))
            splits[SplitFolders[Path.GetFileName(dir)]].AddRange(ReadClassFolders(dir, skipped));

        return new ImageDataset(root, "folders", splits[DatasetSplit.Train], splits[DatasetSplit.Validation], splits[DatasetSplit.Test], skipped);
    }

    /// <summary><c>dir/&lt;label&gt;/**/*</c> -> images; anything else joins <paramref name="skipped"/>.</summary>
    private static List<LabeledImage> ReadClassFolders(string dir, List<SkippedFile> skipped)
    {
        var images = new List<LabeledImage>();
        foreach (var file in SafeFiles(dir))
            skipped.Add(new SkippedFile(file, "not inside a class folder"));
        foreach (var classDir in SafeDirectories(dir).Order(StringComparer.Ordinal))
        {
            var label = Path.GetFileName(classDir);
            int before = images.Count;
            foreach (var file in SafeFiles(classDir, recursive: true).Order(StringComparer.Ordinal))
            {
                if (ImageFileCheck.Inspect(file) is { } reason)
                    skipped.Add(new SkippedFile(file, reason));
                else
                    images.Add(new LabeledImage(file, label));
            }
            if (images.Count == before)
                skipped.Add(new SkippedFile(classDir, "class folder without a usable image: not a class"));
        }
        return images;
    }

    private static List<string> SafeDirectories(string dir)
    {
        try
        {
            return Directory.EnumerateDirectories(dir).Where(d => !Path.GetFileName(d).StartsWith('.')).Order(StringComparer.Ordinal).ToList();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new DatasetException($"{dir}: folder cannot be read ({e.Message}).", e);
        }
    }

    private static List<string> SafeFiles(string dir, bool recursive = false)
    {
        try
        {
            var options = new EnumerationOptions { RecurseSubdirectories = recursive, IgnoreInaccessible = false, AttributesToSkip = FileAttributes.Hidden | FileAttributes.System };
            return Directory.EnumerateFiles(dir, "*", options).Where(f => !Path.GetFileName(f).StartsWith('.')).ToList();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new DatasetException($"{dir}: folder cannot be read ({e.Message}).", e);
        }
    }
}
