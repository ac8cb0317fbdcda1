namespace MlNetTransfer.IO;

/// <summary>Where the tool keeps derived files (composed graphs, feature caches). Never inside the repository.</summary>
internal static class ToolPaths
{
    /// <summary><c>MLNETTRANSFER_CACHE</c>, else the user's local application data folder + <c>MlNetTransfer/cache</c>.</summary>
    public static string CacheRoot =>
        Environment.GetEnvironmentVariable("MLNETTRANSFER_CACHE") is { Length: > 0 } overridden
            ? overridden
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData, Environment.SpecialFolderOption.Create), "MlNetTransfer", "cache");
}
