namespace MlNetTransfer.Featurization;

/// <summary>Where fine-tuning keeps the frozen part's activations of every view while it trains.</summary>
public enum ViewStorage
{
    /// <summary>
    /// On disk in a temp file, as 16-bit floats, read back a batch at a time: memory stays flat as the data grows, and the
    /// file takes half the bytes of <see cref="Disk"/>. Default.
    /// </summary>
    DiskHalf,

    /// <summary>On disk in a temp file, as 32-bit floats (the values exactly as the conv base computed them).</summary>
    Disk,

    /// <summary>In process memory, as 32-bit floats (about 1 MiB an image at resnet18's stage4 with 4 augmented views).</summary>
    Memory,
}
