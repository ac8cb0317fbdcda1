namespace MlNetTransfer.Data;

/// <summary>One image file and its class.</summary>
public sealed record LabeledImage(string Path, string Label);

/// <summary>A file that was left out, and why, in words a person understands.</summary>
public sealed record SkippedFile(string Path, string Reason);

/// <summary>The role a subset plays.</summary>
public enum DatasetSplit
{
    Train,
    Validation,
    Test,
}
