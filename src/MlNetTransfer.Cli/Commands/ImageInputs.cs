using MlNetTransfer.Data;

namespace MlNetTransfer.Cli.Commands;

/// <summary>What <c>predict</c> accepts: one image, a folder (searched recursively), or a CSV/TSV manifest.</summary>
public static class ImageInputs
{
    public static (List<string> Images, List<SkippedFile> Skipped) Expand(string path)
    {
        var full = Path.GetFullPath(path);
        if (Directory.Exists(full))
        {
            var images = new List<string>();
            var skipped = new List<SkippedFile>();
            foreach (var file in Directory.EnumerateFiles(full, "*", SearchOption.AllDirectories).Where(f => !Path.GetFileName(f).StartsWith('.')).Order(StringComparer.Ordinal))
            {
                if (ImageFileCheck.Inspect(file) is { } reason) skipped.Add(new SkippedFile(file, reason));
                else images.Add(file);
            }
            return (images, skipped);
        }
        if (File.Exists(full) && Path.GetExtension(full).ToLowerInvariant() is ".csv" or ".tsv")
        {
            var images = new List<string>();
            var skipped = new List<SkippedFile>();
            foreach (var file in ManifestReader.ReadPaths(full))
            {
                if (ImageFileCheck.Inspect(file) is { } reason) skipped.Add(new SkippedFile(file, reason));
                else images.Add(file);
            }
            return (images, skipped);
        }
        if (!File.Exists(full) && new FileInfo(full).LinkTarget is null)
            throw new FileNotFoundException($"{full}: no such image, folder or manifest.");
        return ([full], []);
    }
}
