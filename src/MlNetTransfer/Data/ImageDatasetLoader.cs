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
        var subfolders = FolderWalk.Folders(root);
        var splitDirs = subfolders.Where(d => SplitFolders.ContainsKey(Path.GetFileName(d))).ToList();
        var skipped = new List<SkippedFile>();
        var walk = new FolderWalk(options.FollowLinks, skipped);
        walk.Root(root);

        if (splitDirs.Count == 0)
        {
            // One pool of labelled images: all of it is training data; the trainer holds out what it needs to choose.
            return new ImageDataset(root, ImageDataset.NoSplits, ReadClassFolders(root, walk, skipped), [], [], skipped);
        }

        if (!splitDirs.Any(d => SplitFolders[Path.GetFileName(d)] == DatasetSplit.Train))
            throw new DatasetException($"{root}: has {string.Join(", ", splitDirs.Select(Path.GetFileName))}/ but no train/ folder.");
        foreach (var other in subfolders.Except(splitDirs))
            skipped.Add(new SkippedFile(other, "folder beside the split folders (train/, val/, test/) is not read"));
        foreach (var file in walk.Files(root, recursive: false))
            skipped.Add(new SkippedFile(file, "file beside the split folders is not in a class folder"));

        var splits = new Dictionary<DatasetSplit, List<LabeledImage>> { [DatasetSplit.Train] = [], [DatasetSplit.Validation] = [], [DatasetSplit.Test] = [] };
        // train/ first: a split folder that is a link to another is skipped, and the one skipped is not the training data.
        foreach (var dir in splitDirs.OrderBy(d => SplitFolders[Path.GetFileName(d)]).ThenBy(d => d, StringComparer.Ordinal))
            if (walk.Enter(dir))
                splits[SplitFolders[Path.GetFileName(dir)]].AddRange(ReadClassFolders(dir, walk, skipped));

        return new ImageDataset(root, "folders", splits[DatasetSplit.Train], splits[DatasetSplit.Validation], splits[DatasetSplit.Test], skipped);
    }

    /// <summary><c>dir/&lt;label&gt;/**/*</c> -> images; anything else joins <paramref name="skipped"/>.</summary>
    private static List<LabeledImage> ReadClassFolders(string dir, FolderWalk walk, List<SkippedFile> skipped)
    {
        foreach (var file in walk.Files(dir, recursive: false))
            skipped.Add(new SkippedFile(file, "not inside a class folder"));
        var perClass = new Dictionary<string, List<LabeledImage>>(StringComparer.Ordinal);
        // Real folders before links, so that a class folder linked to another is the one skipped, whatever the names.
        foreach (var classDir in FolderWalk.Folders(dir).OrderBy(FolderWalk.IsLink).ThenBy(d => d, StringComparer.Ordinal))
        {
            var label = Path.GetFileName(classDir);
            if (!walk.Enter(classDir, asClass: label))
                continue;
            var images = perClass[classDir] = [];
            foreach (var file in walk.Files(classDir, recursive: true))
            {
                if (ImageFileCheck.Inspect(file) is { } reason)
                    skipped.Add(new SkippedFile(file, reason));
                else
                    images.Add(new LabeledImage(file, label));
            }
            if (images.Count == 0)
                skipped.Add(new SkippedFile(classDir, "class folder without a usable image: not a class"));
        }
        return perClass.OrderBy(c => c.Key, StringComparer.Ordinal).SelectMany(c => c.Value).ToList();
    }
}
