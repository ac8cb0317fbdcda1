namespace MlNetTransfer.Data;

/// <summary>
/// A CSV or TSV manifest: <c>path,label[,split]</c>, one image a row, an optional header row, <c>#</c> comments.
/// Relative paths resolve against the manifest's folder. The split column takes train, val/validation or test;
/// without it, every row is a training image.
/// </summary>
internal static class ManifestReader
{
    public static ImageDataset Read(string manifestPath, DatasetOptions options)
    {
        var ext = Path.GetExtension(manifestPath).ToLowerInvariant();
        if (ext is not (".csv" or ".tsv" or ".txt"))
            throw new DatasetException($"{manifestPath}: not a folder or a manifest (.csv or .tsv with path,label rows).");
        char delimiter = ext == ".tsv" ? '\t' : ',';
        var baseDir = Path.GetDirectoryName(manifestPath)!;
        var lines = ReadLines(manifestPath, options.MaxManifestBytes);

        var skipped = new List<SkippedFile>();
        var rows = new List<(LabeledImage Image, DatasetSplit? Split)>();
        bool any = false;
        for (int i = 0; i < lines.Count; i++)
        {
            var line = lines[i].Trim();
            if (line.Length == 0 || line.StartsWith('#'))
                continue;
            var fields = SplitFields(line, delimiter);
            if (!any && IsHeader(fields))
            {
                any = true;
                continue;
            }
            any = true;
            string where = $"{manifestPath} line {i + 1}";
            if (fields.Count < 2 || fields[0].Length == 0 || fields[1].Length == 0)
                throw new DatasetException($"{where}: expected 'path{delimiter}label', got '{line}'.");
            var path = Resolve(fields[0], baseDir, where);
            if (!File.Exists(path) && new FileInfo(path).LinkTarget is null)
                throw new DatasetException($"{where}: '{fields[0]}' does not exist (relative paths resolve against {baseDir}).");
            DatasetSplit? split = fields.Count > 2 && fields[2].Length > 0 ? ParseSplit(fields[2], where) : null;
            if (ImageFileCheck.Inspect(path) is { } reason)
                skipped.Add(new SkippedFile(path, reason));
            else
                rows.Add((new LabeledImage(path, fields[1]), split));
        }

        if (rows.Count > 0 && rows.All(r => r.Split is not null))
        {
            List<LabeledImage> Of(DatasetSplit s) => rows.Where(r => r.Split == s).Select(r => r.Image).ToList();
            return new ImageDataset(manifestPath, "manifest", Of(DatasetSplit.Train), Of(DatasetSplit.Validation), Of(DatasetSplit.Test), skipped);
        }
        if (rows.Any(r => r.Split is not null))
            throw new DatasetException($"{manifestPath}: some rows have a split column and some do not; give it on every row or none.");
        return new ImageDataset(manifestPath, ImageDataset.NoSplitColumn, rows.Select(r => r.Image).ToList(), [], [], skipped);
    }

    /// <summary>The image paths of a manifest (first column), labels optional: what <c>predict</c> reads.</summary>
    public static List<string> ReadPaths(string manifestPath, DatasetOptions? options = null)
    {
        char delimiter = Path.GetExtension(manifestPath).Equals(".tsv", StringComparison.OrdinalIgnoreCase) ? '\t' : ',';
        manifestPath = Path.GetFullPath(manifestPath);
        var baseDir = Path.GetDirectoryName(manifestPath)!;
        var paths = new List<string>();
        bool first = true;
        int number = 0;
        foreach (var raw in ReadLines(manifestPath, (options ?? new DatasetOptions()).MaxManifestBytes))
        {
            number++;
            var line = raw.Trim();
            if (line.Length == 0 || line.StartsWith('#'))
                continue;
            var fields = SplitFields(line, delimiter);
            bool header = first && fields[0].ToLowerInvariant() is "path" or "imagepath" or "image" or "file" or "filename";
            first = false;
            if (!header && fields[0].Length > 0)
                paths.Add(Resolve(fields[0], baseDir, $"{manifestPath} line {number}"));
        }
        return paths;
    }

    /// <summary>A row's path, absolute; a path no file system takes (a NUL inside) is an error naming the row.</summary>
    private static string Resolve(string field, string baseDir, string where)
    {
        try
        {
            if (field.Contains('\0'))
                throw new ArgumentException("a NUL character in the path");
            return Path.GetFullPath(Path.IsPathRooted(field) ? field : Path.Combine(baseDir, field));
        }
        catch (Exception e) when (e is ArgumentException or PathTooLongException or NotSupportedException)
        {
            throw new DatasetException($"{where}: '{IO.PrintableText.Escape(field)}' is not a usable path ({e.Message}).", e);
        }
    }

    /// <summary>Longest manifest line read, in characters: a row is a path and a label, and a file without line ends is no manifest.</summary>
    internal const int MaxLineChars = 64 * 1024;

    /// <summary>
    /// The lines of a manifest, which must be a regular file (a FIFO would block the open, a device never ends: both
    /// are refused before opening), read no further than <paramref name="maxBytes"/> and <see cref="MaxLineChars"/>.
    /// </summary>
    private static List<string> ReadLines(string manifestPath, long maxBytes)
    {
        if (RegularFile.NotRegular(manifestPath) is { } what)
            throw new DatasetException($"{manifestPath}: is {what}, not a regular file, so it is not read as a manifest.");
        try
        {
            var info = new FileInfo(manifestPath);
            if (info.LinkTarget is not null && info.ResolveLinkTarget(returnFinalTarget: true) is FileInfo target)
                info = target;
            if (info.Length > maxBytes)
                throw new DatasetException(FormattableString.Invariant($"{manifestPath}: {info.Length:N0} bytes, more than the manifest limit of {maxBytes:N0} (DatasetOptions.MaxManifestBytes)."));
            // The size is counted again as it is read: a file may grow, or report no size at all.
            using var reader = new StreamReader(new CappedStream(new FileStream(manifestPath, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 4096, FileOptions.SequentialScan), maxBytes),
                System.Text.Encoding.UTF8, detectEncodingFromByteOrderMarks: true);
            var lines = new List<string>();
            var line = new System.Text.StringBuilder();
            var buffer = new char[4096];
            bool cr = false;
            int n;
            while ((n = reader.Read(buffer, 0, buffer.Length)) > 0)
            {
                for (int i = 0; i < n; i++)
                {
                    char c = buffer[i];
                    if (cr && c == '\n') { cr = false; continue; }
                    cr = c == '\r';
                    if (c is '\n' or '\r')
                    {
                        lines.Add(line.ToString());
                        line.Clear();
                    }
                    else if (line.Length == MaxLineChars)
                        throw new DatasetException(FormattableString.Invariant($"{manifestPath} line {lines.Count + 1}: longer than {MaxLineChars:N0} characters, so not a manifest row (path,label[,split])."));
                    else
                        line.Append(c);
                }
            }
            if (line.Length > 0)
                lines.Add(line.ToString());
            return lines;
        }
        catch (CapExceededException e)
        {
            throw new DatasetException(FormattableString.Invariant($"{manifestPath}: more than the manifest limit of {maxBytes:N0} bytes (DatasetOptions.MaxManifestBytes)."), e);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new DatasetException($"{manifestPath}: cannot be read ({e.Message}).", e);
        }
    }

    private static bool IsHeader(List<string> fields) =>
        fields.Count >= 2 && fields[0].ToLowerInvariant() is "path" or "imagepath" or "image" or "file" or "filename"
                          && fields[1].ToLowerInvariant() is "label" or "class" or "category";

    private static DatasetSplit ParseSplit(string value, string where) => value.ToLowerInvariant() switch
    {
        "train" => DatasetSplit.Train,
        "val" or "validation" or "valid" => DatasetSplit.Validation,
        "test" => DatasetSplit.Test,
        _ => throw new DatasetException($"{where}: split '{value}' is not train, val or test."),
    };

    /// <summary>Splits one line; fields may be double-quoted (a quote inside doubled), as spreadsheets write them.</summary>
    private static List<string> SplitFields(string line, char delimiter)
    {
        var fields = new List<string>();
        var current = new System.Text.StringBuilder();
        bool quoted = false;
        for (int i = 0; i < line.Length; i++)
        {
            char c = line[i];
            if (quoted)
            {
                if (c == '"' && i + 1 < line.Length && line[i + 1] == '"') { current.Append('"'); i++; }
                else if (c == '"') quoted = false;
                else current.Append(c);
            }
            else if (c == '"') quoted = true;
            else if (c == delimiter) { fields.Add(current.ToString().Trim()); current.Clear(); }
            else current.Append(c);
        }
        fields.Add(current.ToString().Trim());
        return fields;
    }
}
