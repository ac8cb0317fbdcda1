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
    [Description("Featurize only part i of n (1/4 .. 4/4): every n-th image in path order, the same on every machine. auto: the task index of a Slurm job array (SLURM_ARRAY_TASK_ID, 0-3 or 1-4) or a Kubernetes Indexed Job (JOB_COMPLETION_INDEX, with --shard-count).")]
    [DefaultValue("1/1")]
    public string Shard { get; init; } = "1/1";

    [CommandOption("--shard-count <N>")]
    [Description("With --shard auto under a Kubernetes Indexed Job: the number of shards (the Job's completions, which Kubernetes does not put in the environment). Under Slurm the array gives it.")]
    public int? ShardCount { get; init; }

    [CommandOption("-o|--out <FILE>")]
    [Description("Shard file to write. Default: features-<i>-of-<n>.shard (with --shard auto, the resolved i and n)")]
    public string? Out { get; init; }

    internal override TrainerTask Task => TrainerTask.Train;

    private bool IsAuto => string.Equals(Shard, SchedulerShard.Auto, StringComparison.OrdinalIgnoreCase);

    /// <summary>The 0-based shard and the count: from --shard i/n, or with --shard auto from the scheduler's environment.</summary>
    internal SchedulerShard.Resolved? ResolveShard(out string? error)
    {
        if (IsAuto)
            return SchedulerShard.TryResolve(SchedulerShard.ProcessEnvironment, ShardCount, out error);
        var spec = FeatureShard.TryParseSpec(Shard);
        error = ShardCount is not null ? "--shard-count goes with --shard auto only (--shard i/n says n itself)"
            : spec is null ? $"--shard '{Shard}' is not i/n with 1 <= i <= n (e.g. 1/4), nor auto"
            : null;
        return error is null && spec is var (index, count) ? new SchedulerShard.Resolved(index, count, "--shard") : null;
    }

    internal override string? MoreErrors() =>
        ResolveShard(out var error) is null ? error
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
        var shard = settings.ResolveShard(out _)!;
        var (index, count) = (shard.Index, shard.Count);
        var output = settings.Out ?? $"features-{index + 1}-of-{count}.shard";
        var options = settings.Options();
        var progress = new ConsoleProgress(console, settings.Quiet);
        var (written, skipped) = progress.Run(() => new ImageClassifierTrainer(options).FeaturizeShard(settings.Data, index, count, output, progress, cancellationToken));
        if (skipped.Count > 0 && !settings.Quiet)
            ReportRenderer.Skipped(console, skipped, settings.Verbose);
        var from = shard.Source == "--shard" ? "" : $" (--shard auto: {SafeMarkup.Escape(shard.Source)})";
        console.MarkupLine($"Wrote [bold]{SafeMarkup.Escape(Path.GetFullPath(output))}[/]: shard {index + 1}/{count}{from}, {written} images, base {SafeMarkup.Escape(options.ConvBase.Name)}; {skipped.Count} skipped.");
        console.MarkupLine($"Merge: mlnet-transfer train {SafeMarkup.Escape(settings.Data)} --features <each shard file> (with the same --base, --mode, --unfreeze, --head and --augment)");
        return 0;
    }
}
