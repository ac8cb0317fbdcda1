namespace MlNetTransfer.Data;

/// <summary>What a truncated image (its data ends early) is taken for.</summary>
public enum TruncatedImagePolicy
{
    /// <summary>Skip it and list it (default): a half-decoded photo trains as a grey smear.</summary>
    Skip,
    /// <summary>Use what decoded, and list it as a warning.</summary>
    Warn,
}

/// <summary>What counts as a bad image. The defaults suit photos.</summary>
public sealed record ImageValidationOptions
{
    /// <summary>Largest image accepted, in pixels, checked from the header before anything is decoded. Default 50 MP.</summary>
    public long MaxPixels { get; init; } = 50_000_000;

    /// <summary>Smallest width and height accepted. Default 8.</summary>
    public int MinSide { get; init; } = 8;

    /// <summary>Largest ratio of the long side to the short side. Default 20.</summary>
    public double MaxAspectRatio { get; init; } = 20;

    /// <summary>Truncated images: skipped (default) or used with a warning.</summary>
    public TruncatedImagePolicy OnTruncated { get; init; } = TruncatedImagePolicy.Skip;

    /// <summary>Largest file read, in bytes. Default 200 MB.</summary>
    public long MaxFileBytes { get; init; } = 200L * 1024 * 1024;
}
