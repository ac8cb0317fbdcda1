using MlNetTransfer.Data;

namespace MlNetTransfer.Cli.Commands;

/// <summary>What <c>predict</c> and <c>validate</c> accept: one image, a folder (searched recursively), or a CSV/TSV manifest.</summary>
public static class ImageInputs
{
    /// <summary>
    /// The images to read and the files left out with their reasons. A folder is walked as training walks one (no folder
    /// read twice, links per <see cref="DatasetOptions.FollowLinks"/>); a manifest is read within <see cref="DatasetOptions.MaxManifestBytes"/>.
    /// </summary>
    public static (List<string> Images, List<SkippedFile> Skipped) Expand(string path, DatasetOptions? options = null)
    {
        options ??= new DatasetOptions();
        var full = Path.GetFullPath(path);
        if (Directory.Exists(full))
        {
            var skipped = new List<SkippedFile>();
            return (Checked(FolderWalk.AllFiles(full, options.FollowLinks, skipped), skipped), skipped);
        }
        if (File.Exists(full) && Path.GetExtension(full).ToLowerInvariant() is ".csv" or ".tsv")
        {
            var skipped = new List<SkippedFile>();
            return (Checked(ManifestReader.ReadPaths(full, options), skipped), skipped);
        }
        if (!File.Exists(full) && new FileInfo(full).LinkTarget is null)
            throw new FileNotFoundException($"{full}: no such image, folder or manifest.");
        return ([full], []);
    }

    private static List<string> Checked(IEnumerable<string> files, List<SkippedFile> skipped)
    {
        var images = new List<string>();
        foreach (var file in files.Order(StringComparer.Ordinal))
        {
            if (ImageFileCheck.Inspect(file) is { } reason) skipped.Add(new SkippedFile(file, reason));
            else images.Add(file);
        }
        return images;
    }
}
