using System.Globalization;

namespace MlNetTransfer.IO;

/// <summary>
/// Temp files named after the process that made them (<c>&lt;pid&gt;-&lt;guid&gt;...tmp</c>), so that the next run can
/// remove what a killed or crashed one left behind: a file whose process is gone is deleted when its folder is next used.
/// </summary>
internal static class TempFiles
{
    /// <summary>A new temp file path in <paramref name="folder"/> (not created).</summary>
    public static string NewPath(string folder, string suffix = "") =>
        Path.Combine(folder, string.Create(CultureInfo.InvariantCulture, $"{Environment.ProcessId}-{Guid.NewGuid():N}{suffix}.tmp"));

    /// <summary>A new, empty temp folder in <paramref name="parent"/>; stale ones beside it are removed first.</summary>
    public static string NewFolder(string parent)
    {
        Directory.CreateDirectory(parent);
        RemoveStale(parent);
        var path = NewPath(parent);
        Directory.CreateDirectory(path);
        return path;
    }

    /// <summary>Deletes the temp files and folders in <paramref name="folder"/> whose process is no longer running.</summary>
    public static void RemoveStale(string folder)
    {
        try
        {
            if (!Directory.Exists(folder))
                return;
            foreach (var entry in Directory.EnumerateFileSystemEntries(folder, "*.tmp"))
            {
                var name = Path.GetFileName(entry);
                int dash = name.IndexOf('-');
                if (dash > 0 && int.TryParse(name.AsSpan(0, dash), NumberStyles.None, CultureInfo.InvariantCulture, out int pid) && !IsRunning(pid))
                {
                    if (Directory.Exists(entry))
                        TryDeleteFolder(entry);
                    else
                        TryDelete(entry);
                }
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Cleaning up is a courtesy; nothing depends on it.
        }
    }

    public static bool IsRunning(int pid)
    {
        if (pid == Environment.ProcessId)
            return true;
        try
        {
            using var process = System.Diagnostics.Process.GetProcessById(pid);
            return !process.HasExited;
        }
        catch (ArgumentException)
        {
            return false;
        }
        catch (InvalidOperationException)
        {
            return false;
        }
    }

    public static void TryDeleteFolder(string path)
    {
        try { Directory.Delete(path, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    public static void TryDelete(string path)
    {
        try { File.Delete(path); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
