using System.ComponentModel;
using Microsoft.ML;
using MlNetTransfer.Backbones;
using MlNetTransfer.Cli.Rendering;
using MlNetTransfer.Data;
using MlNetTransfer.Featurization;
using MlNetTransfer.Onnx;
using Spectre.Console;
using Spectre.Console.Cli;

namespace MlNetTransfer.Cli.Commands;

public sealed class FeaturizeSettings : FeaturizerSettings
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

    public override ValidationResult Validate()
    {
        try
        {
            FeatureShard.ParseSpec(Shard);
        }
        catch (ArgumentException e)
        {
            return ValidationResult.Error(e.Message);
        }
        return base.Validate();
    }
}

/// <summary>
/// <c>featurize</c>: runs the conv base over a data set, or one shard of it, and writes the vectors to a shard file
/// (and the local feature cache). <c>train --features shard...</c> on another machine merges them.
/// </summary>
public sealed class FeaturizeCommand : Command<FeaturizeSettings>
{
    public override int Execute(CommandContext context, FeaturizeSettings settings, CancellationToken cancellationToken)
    {
        var console = ConsoleFactory.Create(settings);
        var (index, count) = FeatureShard.ParseSpec(settings.Shard);
        var preset = ConvBaseRegistry.Resolve(settings.Base, settings.BaseModel);
        var dataset = ImageDatasetLoader.Load(settings.Data, settings.DatasetOptions());
        var selected = FeatureShard.Select(dataset.All, settings.Data, index, count);
        var training = dataset.Train.ToHashSet();
        var output = settings.Out ?? $"features-{index + 1}-of-{count}.shard";

        var progress = new ConsoleProgress(console, settings.Quiet);
        var (records, unreadable, graph) = progress.Run(() =>
        {
            var graph = FeaturizerGraphCache.GetOrBuild(preset);
            // Calibrated on the whole training split, not this shard's part: every shard gets the same int8 base.
            if (settings.ConvBasePrecision == ConvBasePrecision.Int8)
                graph = Int8ConvBase.GetOrBuild(graph, dataset.Train, settings.Seed, validation: settings.Validation, progress: progress);
            using var featurizer = new ImageFeaturizer(new MLContext(settings.Seed), graph, settings.FeaturizerOptions());
            if (featurizer.DeviceNote is not null)
                progress.Report(new Progress.ProgressNote(featurizer.DeviceNote, IsWarning: true));
            // Training images also get their mirror view, as train computes them (unless --no-mirror).
            var train = featurizer.Featurize(selected.Where(training.Contains).ToList(), "featurize train", progress, !settings.NoMirror, cancellationToken);
            var heldOut = featurizer.Featurize(selected.Where(i => !training.Contains(i)).ToList(), "featurize held-out", progress, false, cancellationToken);
            var records = train.Images.Concat(heldOut.Images)
                .Select(i => new ShardRecord(i.ContentHash!, FeatureShard.Relative(settings.Data, i.Image.Path), i.Image.Label, i.Features, i.MirroredFeatures))
                .OrderBy(r => r.RelativePath, StringComparer.Ordinal)
                .ToList();
            return (records, train.Unreadable.Concat(heldOut.Unreadable).ToList(), graph);
        });

        new FeatureShard
        {
            FeaturizerKey = FeatureCache.KeyOf(graph),
            ConvBase = preset.Name,
            FeatureLength = graph.FeatureLength,
            Index = index,
            Count = count,
            Records = records,
        }.Save(output);

        if (unreadable.Count > 0 && !settings.Quiet)
            ReportRenderer.Skipped(console, unreadable, settings.Verbose);
        console.MarkupLine($"Wrote [bold]{Markup.Escape(Path.GetFullPath(output))}[/]: shard {index + 1}/{count}, {records.Count} of {dataset.All.Count()} images, {graph.FeatureLength} features each, base {Markup.Escape(preset.Name)}; {unreadable.Count} skipped.");
        console.MarkupLine($"Merge: mlnet-transfer train {Markup.Escape(settings.Data)} --features <each shard file>");
        return 0;
    }
}
