using System.ComponentModel;
using MlNetTransfer.Data;
using Spectre.Console;
using Spectre.Console.Cli;

namespace MlNetTransfer.Cli.Commands;

/// <summary>Options of the commands that read images: what counts as a bad one.</summary>
public class ImageSettings : GlobalSettings
{
    [CommandOption("--max-pixels <N>")]
    [Description("Reject images larger than this many pixels, from the header, before decoding.")]
    [DefaultValue(50_000_000L)]
    public long MaxPixels { get; init; } = 50_000_000;

    [CommandOption("--min-size <PX>")]
    [Description("Reject images narrower or lower than this.")]
    [DefaultValue(8)]
    public int MinSize { get; init; } = 8;

    [CommandOption("--on-truncated <POLICY>")]
    [Description("Truncated images (data ends early): skip (listed) or warn (used, listed as a warning).")]
    [DefaultValue("skip")]
    public string OnTruncated { get; init; } = "skip";

    [CommandOption("--no-follow-links")]
    [Description("Skip (and list) every link to a folder inside the data. By default a link is read once: a link to a folder already read (., ..) or to another class folder is skipped and listed either way.")]
    public bool NoFollowLinks { get; init; }

    /// <summary>How folders and manifests are read (the rest of the data options are the trainer's, <see cref="RunSettings"/>).</summary>
    public DatasetOptions DataOptions => new() { FollowLinks = !NoFollowLinks };

    public ImageValidationOptions Validation => new()
    {
        MaxPixels = MaxPixels,
        MinSide = MinSize,
        OnTruncated = OnTruncated == "warn" ? TruncatedImagePolicy.Warn : TruncatedImagePolicy.Skip,
    };

    public override ValidationResult Validate() =>
        MaxPixels < 64 ? ValidationResult.Error("--max-pixels must be at least 64")
        : MinSize < 1 ? ValidationResult.Error("--min-size must be at least 1")
        : OnTruncated is not ("skip" or "warn") ? ValidationResult.Error("--on-truncated must be skip or warn")
        : base.Validate();
}
