namespace MlNetTransfer.Data;

/// <summary>
/// Walks a folder tree without reading any folder twice. Directory.EnumerateFiles with RecurseSubdirectories follows
/// links, so a link to <c>.</c> reads a folder some 40 times (until the OS refuses the path) and a link to <c>..</c>
/// never ends; here every folder entered is remembered by its real path (links resolved), and a folder already read,
/// one that holds what is read, or any linked folder when links are off, is skipped and listed with the reason.
/// </summary>
internal sealed class FolderWalk(bool followLinks, List<SkippedFile> skipped)
{
    /// <summary>How this OS compares paths (case-insensitive file systems are the default on Windows and macOS).</summary>
    private static readonly StringComparer PathComparer =
        OperatingSystem.IsWindows() || OperatingSystem.IsMacOS() ? StringComparer.OrdinalIgnoreCase : StringComparer.Ordinal;

    /// <summary>Real path of each folder read -> the path it was read at, and the class it was read as (null: not a class folder).</summary>
    private readonly Dictionary<string, (string Path, string? Label)> _read = new(PathComparer);

    /// <summary>Path of each folder entered -> its real path.</summary>
    private readonly Dictionary<string, string> _realOf = new(StringComparer.Ordinal);

    /// <summary>Every file under <paramref name="root"/> (recursively, ordinal order), what <c>predict</c> and <c>validate</c> read of a folder.</summary>
    public static List<string> AllFiles(string root, bool followLinks, List<SkippedFile> skipped)
    {
        var walk = new FolderWalk(followLinks, skipped);
        walk.Root(root);
        return walk.Files(root, recursive: true);
    }

    /// <summary>The folder the user named: read whatever it is (a link too).</summary>
    public void Root(string dir)
    {
        try
        {
            var real = RealPathOf(dir);
            _read.TryAdd(real, (dir, null));
            _realOf[dir] = real;
        }
        catch (IOException e)
        {
            throw new DatasetException($"{dir}: folder cannot be read ({e.Message}).", e);
        }
    }

    /// <summary>
    /// Whether to read <paramref name="dir"/> (a split folder, a class folder when <paramref name="asClass"/> is given, a
    /// folder within one); when not, it joins the skipped list with the reason.
    /// </summary>
    public bool Enter(string dir, string? asClass = null)
    {
        var link = new DirectoryInfo(dir).LinkTarget;
        string real;
        try
        {
            // A folder that is no link is where its parent really is: no need to resolve the whole path again.
            real = link is null && _realOf.TryGetValue(Path.GetDirectoryName(dir) ?? "", out var parent) ? Path.Combine(parent, Path.GetFileName(dir)) : RealPathOf(dir);
        }
        catch (IOException e)
        {
            return Skip(dir, $"link to '{link}' cannot be followed ({e.Message})");
        }
        if (link is not null && !followLinks)
            return Skip(dir, $"link to a folder ('{link}'): not read (DatasetOptions.FollowLinks is off)");
        if (_read.TryGetValue(real, out var first))
            return Skip(dir, asClass is not null && first.Label is not null && first.Label != asClass
                ? $"link to class '{first.Label}': not a second class"
                : link is null
                    ? $"the same folder as {first.Path}, a folder already read: not read again"
                    : $"link to '{link}' ({first.Path}), a folder already read: not read again");
        // Only a link can lead above what is read (a folder reached without one is below its parent, and new).
        var inside = real.EndsWith(Path.DirectorySeparatorChar) ? real : real + Path.DirectorySeparatorChar;
        if (link is not null && _read.Keys.FirstOrDefault(r => r.StartsWith(inside, PathComparer == StringComparer.Ordinal ? StringComparison.Ordinal : StringComparison.OrdinalIgnoreCase)) is { } held)
            return Skip(dir, $"link to '{link ?? real}', a folder that holds {_read[held].Path}: not read (its files are read already)");
        _read[real] = (dir, asClass);
        _realOf[dir] = real;
        return true;
    }

    /// <summary>The files in <paramref name="dir"/> (and, when <paramref name="recursive"/>, in the folders within it that <see cref="Enter"/> lets in), ordinal order.</summary>
    public List<string> Files(string dir, bool recursive)
    {
        var files = new List<string>();
        var pending = new Stack<string>();
        pending.Push(dir);
        while (pending.Count > 0)
        {
            foreach (var entry in Entries(pending.Pop()))
            {
                if (entry is not DirectoryInfo)
                    files.Add(entry.FullName);
                else if (recursive && Enter(entry.FullName))
                    pending.Push(entry.FullName);
            }
        }
        return files.Order(StringComparer.Ordinal).ToList();
    }

    /// <summary>The folders directly in <paramref name="dir"/> (links to folders too), ordinal order; hidden ones left out.</summary>
    public static List<string> Folders(string dir) =>
        Entries(dir).OfType<DirectoryInfo>().Select(d => d.FullName).Order(StringComparer.Ordinal).ToList();

    /// <summary>True when <paramref name="dir"/> is itself a link (a class folder that is one is read after the real ones).</summary>
    public static bool IsLink(string dir) => new DirectoryInfo(dir).LinkTarget is not null;

    private bool Skip(string dir, string reason)
    {
        skipped.Add(new SkippedFile(dir, reason));
        return false;
    }

    private static List<FileSystemInfo> Entries(string dir)
    {
        try
        {
            var options = new EnumerationOptions { RecurseSubdirectories = false, IgnoreInaccessible = false, AttributesToSkip = FileAttributes.Hidden | FileAttributes.System };
            return new DirectoryInfo(dir).EnumerateFileSystemInfos("*", options).Where(e => !e.Name.StartsWith('.')).ToList();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new DatasetException($"{dir}: folder cannot be read ({e.Message}).", e);
        }
    }

    /// <summary>
    /// The path with every link on the way replaced by what it points to, as the OS resolves it (a link's <c>..</c> is
    /// taken from where the link really is, not from the path it was reached by).
    /// </summary>
    internal static string RealPathOf(string path)
    {
        var full = Path.GetFullPath(path);
        var root = Path.GetPathRoot(full)!;
        int hops = 0;
        return Follow(root, full[root.Length..], ref hops);
    }

    private static string Follow(string from, string relative, ref int hops)
    {
        var current = from;
        foreach (var part in relative.Split([Path.DirectorySeparatorChar, Path.AltDirectorySeparatorChar], StringSplitOptions.RemoveEmptyEntries))
        {
            if (part == ".")
                continue;
            if (part == "..")
            {
                current = Path.GetDirectoryName(current) ?? current;
                continue;
            }
            var next = Path.Combine(current, part);
            var target = new FileInfo(next).LinkTarget;
            if (target is null)
            {
                current = next;
                continue;
            }
            // As the OS does: a chain of links this long is a loop.
            if (++hops > 40)
                throw new IOException("too many levels of links");
            current = Path.IsPathFullyQualified(target)
                ? Follow(Path.GetPathRoot(target)!, target[Path.GetPathRoot(target)!.Length..], ref hops)
                : Follow(current, target, ref hops);
        }
        return current;
    }
}
