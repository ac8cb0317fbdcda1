namespace MlNetTransfer.IO;

/// <summary>
/// Writes go to a temp file in the target's folder and are renamed into place, so a crash or kill never leaves a
/// half-written model, report or cache entry where a good one was.
/// </summary>
internal static class AtomicFile
{
    public static void Write(string path, Action<Stream> write)
    {
        var full = Path.GetFullPath(path);
        var dir = Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(dir);
        RemoveStaleTemps(dir, Path.GetFileName(full));
        var temp = Path.Combine(dir, $".{Path.GetFileName(full)}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None))
            {
                write(stream);
                stream.Flush(flushToDisk: true);
            }
            File.Move(temp, full, overwrite: true);
        }
        catch
        {
            TryDelete(temp);
            throw;
        }
    }

    public static void WriteAllText(string path, string text) =>
        Write(path, s => { using var w = new StreamWriter(s, new System.Text.UTF8Encoding(false), leaveOpen: true); w.Write(text); });

    /// <summary>Temp files that a killed process left beside the target (their process is gone) are removed.</summary>
    private static void RemoveStaleTemps(string dir, string name)
    {
        try
        {
            foreach (var temp in Directory.EnumerateFiles(dir, $".{name}.*.tmp"))
            {
                var parts = Path.GetFileName(temp)[(name.Length + 2)..].Split('.');
                if (parts.Length >= 1 && int.TryParse(parts[0], out int pid) && pid != Environment.ProcessId && !TempFiles.IsRunning(pid))
                    TryDelete(temp);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Cleaning up is a courtesy; the write itself does not depend on it.
        }
    }

    private static void TryDelete(string path)
    {
        try { File.Delete(path); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
