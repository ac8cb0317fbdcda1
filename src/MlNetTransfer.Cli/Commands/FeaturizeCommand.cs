using System.ComponentModel;
using MlNetTransfer.Cli.Rendering;
using MlNetTransfer.Featurization;
using MlNetTransfer.Training;
using Spectre.Console;
using Spectre.Console.Cli;

namespace MlNetTransfer.Cli.Commands;

public sealed class FeaturizeSettings : ViewSettings
{
    [CommandArgument(0, "<data>")]
    [Description("Folder of labelled images or a manifest, as for train.")]
    public string Data { get; init; } = "";

    [CommandOption("--shard <I/N>")]
    [Description("Featurize only part i of n (1/4 .. 4/4): every n-th image in path order, the same on every machine.")]
    [DefaultValue("1/1")]
    public string Shard { get; init; } = "1/1";

    [CommandOption("-o|--out <FILE>")]
    [Description("Shard file to write. Default: features-<i>-of-<n>.shard")]
    public string? Out { get; init; }

    internal override TrainerTask Task => TrainerTask.Train;

    internal override string? MoreErrors() =>
        FeatureShard.TryParseSpec(Shard) is null ? $"--shard '{Shard}' is not i/n with 1 <= i <= n (e.g. 1/4)"
        : Options().Mode == TrainingMode.Auto ? "--mode auto cuts the graph once per candidate: make the shards of each fixed mode (and --head, --unfreeze) the runs will use"
        : null;
}

/// <summary>
/// <c>featurize</c>: flags -> <see cref="ImageClassifierTrainer.FeaturizeShard"/>: runs the conv base (or its frozen part,
/// for fine-tuning) over one shard of a data set and writes what train with the same flags would compute for it;
/// <c>train --features shard...</c> on another machine merges them.
/// </summary>
public sealed class FeaturizeCommand : Command<FeaturizeSettings>
{
    public override int Execute(CommandContext context, FeaturizeSettings settings, CancellationToken cancellationToken)
    {
        var console = ConsoleFactory.Create(settings);
        var (index, count) = FeatureShard.TryParseSpec(settings.Shard)!.Value;
        var output = settings.Out ?? $"features-{index + 1}-of-{count}.shard";
        var options = settings.Options();
        var progress = new ConsoleProgress(console, settings.Quiet);
        var (written, skipped) = progress.Run(() => new ImageClassifierTrainer(options).FeaturizeShard(settings.Data, index, count, output, progress, cancellationToken));
        if (skipped.Count > 0 && !settings.Quiet)
            ReportRenderer.Skipped(console, skipped, settings.Verbose);
        console.MarkupLine($"Wrote [bold]{SafeMarkup.Escape(Path.GetFullPath(output))}[/]: shard {index + 1}/{count}, {written} images, base {SafeMarkup.Escape(options.ConvBase.Name)}; {skipped.Count} skipped.");
        console.MarkupLine($"Merge: mlnet-transfer train {SafeMarkup.Escape(settings.Data)} --features <each shard file> (with the same --base, --mode, --unfreeze, --head and --augment)");
        return 0;
    }
}
