using System.Text;
using MlNetTransfer.Data;
using SharpFuzz;

namespace MlNetTransfer.Fuzz;

/// <summary>
/// The fuzz target for <see cref="ManifestReader.Read(string, DatasetOptions)"/> and <see cref="ManifestReader.ReadPaths(string)"/>,
/// run by <c>fuzz/run.sh manifest</c> under AFL++.
/// <list type="bullet">
/// <item>no arguments: the AFL target (SharpFuzz's out-of-process fork server; the input comes on stdin);</item>
/// <item><c>--repro FILE|DIR ...</c>: reads each input once and prints what happened (triage of findings);</item>
/// <item><c>--make-corpus DIR</c>: writes the seed corpus (see <see cref="SeedCorpus"/>).</item>
/// </list>
/// An input is one byte that picks the manifest's extension (even: <c>.csv</c>, odd: <c>.tsv</c>), then the manifest's
/// bytes. They are written to <c>m.csv</c>/<c>m.tsv</c> in a folder of this process that also holds a few real images
/// (<c>a.png</c>, <c>b.png</c>, <c>c.png</c>, <c>sub/d.png</c>) and two that are not (<c>bad.png</c>: text,
/// <c>empty.png</c>: 0 bytes), so that rows can name existing, missing and unreadable files by relative path.
/// </summary>
public static class Program
{
    public static readonly DatasetOptions Options = new();

    public static int Main(string[] args)
    {
        if (args.Length >= 1 && args[0] == "--make-corpus")
        {
            SeedCorpus.Write(args.Length > 1 ? args[1] : "corpus-manifest");
            return 0;
        }
        using var folder = new WorkFolder();
        if (args.Length >= 1 && args[0] == "--repro")
            return Repro.Run("ManifestFuzz", args.Skip(1), input => ReadAndCheck(folder, input));

        // Out of process: the reading runs in a child process that is restarted when it dies, so a crash (or a stack
        // overflow) is reported to afl-fuzz and fuzzing goes on.
        Fuzzer.OutOfProcess.Run(stream =>
        {
            using var memory = new MemoryStream();
            stream.CopyTo(memory);
            ReadAndCheck(folder, memory.ToArray());
        });
        return 0;
    }

    /// <summary>One input through both entry points, checking the contract. Anything thrown out of here is a finding.</summary>
    public static string ReadAndCheck(WorkFolder folder, byte[] input)
    {
        var ext = input.Length > 0 && (input[0] & 1) == 1 ? ".tsv" : ".csv";
        var manifest = Path.Combine(folder.Path, "m" + ext);
        // One manifest at a time: remove the other extension's so a finding replays alone.
        File.Delete(Path.Combine(folder.Path, ext == ".csv" ? "m.tsv" : "m.csv"));
        File.WriteAllBytes(manifest, input.Length > 0 ? input[1..] : []);

        string outcome;
        try
        {
            var dataset = ManifestReader.Read(manifest, Options);
            outcome = CheckDataset(manifest, dataset);
        }
        catch (DatasetException e)
        {
            if (string.IsNullOrWhiteSpace(e.Message))
                throw new InvalidOperationException("contract: a DatasetException with an empty message", e);
            if (!e.Message.Contains(manifest, StringComparison.Ordinal))
                throw new InvalidOperationException($"contract: the DatasetException does not name the manifest: {e.Message}", e);
            outcome = "refused: " + e.Message;
        }

        // ReadPaths (predict's reader) returns the first column of every row as a full path, or refuses the manifest
        // (not a regular file, too large, a line too long, a path no file system takes) with a DatasetException naming it.
        List<string> paths;
        try
        {
            paths = ManifestReader.ReadPaths(manifest);
        }
        catch (DatasetException e)
        {
            if (string.IsNullOrWhiteSpace(e.Message) || !e.Message.Contains(manifest, StringComparison.Ordinal))
                throw new InvalidOperationException($"contract: ReadPaths's DatasetException does not name the manifest: {e.Message}");
            return $"{ext}: {outcome}; ReadPaths refused: {e.Message}";
        }
        if (paths is null)
            throw new InvalidOperationException("contract: ReadPaths returned null");
        foreach (var p in paths)
            if (string.IsNullOrEmpty(p) || !Path.IsPathRooted(p))
                throw new InvalidOperationException($"contract: ReadPaths returned a path that is not a full path: '{p}'");
        return $"{ext}: {outcome}; ReadPaths: {paths.Count} paths";
    }

    private static string CheckDataset(string manifest, ImageDataset dataset)
    {
        if (dataset is null)
            throw new InvalidOperationException("contract: Read returned null");
        if (dataset.Source != manifest)
            throw new InvalidOperationException($"contract: the dataset's source is '{dataset.Source}', not the manifest");
        if (dataset.Train is null || dataset.Validation is null || dataset.Test is null || dataset.Skipped is null || dataset.Classes is null)
            throw new InvalidOperationException("contract: a list of the dataset is null");
        foreach (var image in dataset.All)
        {
            if (string.IsNullOrEmpty(image.Label))
                throw new InvalidOperationException($"contract: an image without a label: '{image.Path}'");
            if (!Path.IsPathRooted(image.Path) || !File.Exists(image.Path))
                throw new InvalidOperationException($"contract: an image that is not an existing file by full path: '{image.Path}'");
        }
        foreach (var skipped in dataset.Skipped)
            if (string.IsNullOrEmpty(skipped.Reason))
                throw new InvalidOperationException($"contract: a file skipped without a reason: '{skipped.Path}'");
        if (dataset.Classes.Count != dataset.All.Select(i => i.Label).Distinct().Count())
            throw new InvalidOperationException("contract: the classes are not the labels");
        return $"{dataset.SplitOrigin}: {dataset.Train.Count}/{dataset.Validation.Count}/{dataset.Test.Count} images, {dataset.Classes.Count} classes, {dataset.Skipped.Count} skipped";
    }
}

/// <summary>
/// This process's folder under the temp folder (<c>ManifestFuzz-&lt;pid&gt;</c>) with the images rows may name. Folders
/// left by processes that are gone (a child killed by a crash) are removed when the next one starts.
/// </summary>
public sealed class WorkFolder : IDisposable
{
    private const string Prefix = "ManifestFuzz-";

    public string Path { get; }

    public WorkFolder()
    {
        var temp = System.IO.Path.GetTempPath();
        foreach (var stale in Directory.GetDirectories(temp, Prefix + "*"))
            if (int.TryParse(System.IO.Path.GetFileName(stale)[Prefix.Length..], out int pid) && !Alive(pid))
                try { Directory.Delete(stale, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        Path = System.IO.Path.Combine(temp, Prefix + Environment.ProcessId);
        Directory.CreateDirectory(System.IO.Path.Combine(Path, "sub"));
        var images = FindImages();
        File.Copy(images[0], System.IO.Path.Combine(Path, "a.png"), overwrite: true);
        File.Copy(images[1], System.IO.Path.Combine(Path, "b.png"), overwrite: true);
        File.Copy(images[2], System.IO.Path.Combine(Path, "c.png"), overwrite: true);
        File.Copy(images[3], System.IO.Path.Combine(Path, "sub", "d.png"), overwrite: true);
        File.WriteAllText(System.IO.Path.Combine(Path, "bad.png"), "not an image\n");
        File.WriteAllBytes(System.IO.Path.Combine(Path, "empty.png"), []);
    }

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    private static bool Alive(int pid)
    {
        try { using var p = System.Diagnostics.Process.GetProcessById(pid); return !p.HasExited; }
        catch (ArgumentException) { return false; }
        catch (InvalidOperationException) { return false; }
    }

    /// <summary>Four PNGs of data/fashion-mnist-sample/train (one of each of four classes), found above the harness.</summary>
    private static string[] FindImages()
    {
        var env = Environment.GetEnvironmentVariable("FUZZ_IMAGES");
        for (var dir = new DirectoryInfo(env ?? AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var train = System.IO.Path.Combine(dir.FullName, "data", "fashion-mnist-sample", "train");
            if (env is not null && !Directory.Exists(train))
                train = dir.FullName;
            if (!Directory.Exists(train))
                continue;
            var found = Directory.GetDirectories(train).Order(StringComparer.Ordinal)
                .Select(c => Directory.GetFiles(c, "*.png").Order(StringComparer.Ordinal).FirstOrDefault())
                .OfType<string>().Take(4).ToArray();
            if (found.Length == 4)
                return found;
            if (env is not null)
                break;
        }
        throw new InvalidOperationException("ManifestFuzz: no data/fashion-mnist-sample/train above the harness (set FUZZ_IMAGES to a folder of class folders of PNGs)");
    }
}
