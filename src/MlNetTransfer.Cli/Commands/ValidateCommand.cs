using System.ComponentModel;
using System.Text.Json;
using MlNetTransfer.Cli.Rendering;
using MlNetTransfer.Data;
using Spectre.Console;
using Spectre.Console.Cli;

namespace MlNetTransfer.Cli.Commands;

public sealed class ValidateSettings : ImageSettings
{
    [CommandArgument(0, "<images>")]
    [Description("An image, a folder of images (searched recursively), or a CSV/TSV manifest.")]
    public string Images { get; init; } = "";

    [CommandOption("--json")]
    [Description("Write every file's verdict as JSON to standard output (with --labels: the data checks' findings too).")]
    public bool Json { get; init; }

    [CommandOption("--labels")]
    [Description("<images> is labelled data (as train takes it): also run the data checks training runs: exact and near-duplicates within a class, across classes and across splits (leakage), and likely label errors from out-of-fold probabilities of the L-BFGS head on the pooled features (runs the conv base; cached).")]
    public bool Labels { get; init; }

    [CommandOption("--near-duplicate-threshold <X>")]
    [Description("--labels: the cosine of two images' pooled features at or above which they are near-duplicates.")]
    [DefaultValue(0.92)]
    public double NearDuplicateThreshold { get; init; } = 0.92;

    public override ValidationResult Validate() =>
        !Labels && NearDuplicateThreshold != 0.92 ? ValidationResult.Error("--near-duplicate-threshold does nothing without --labels")
        : NearDuplicateThreshold is not (> 0 and <= 1) ? ValidationResult.Error("--near-duplicate-threshold must be above 0 and at most 1")
        : base.Validate();
}

/// <summary>
/// <c>validate</c>: checks images as training would (header limits first, then a full decode that notices truncation)
/// without a model, and lists every bad file with the reason. With <c>--labels</c>, the data checks on labelled data.
/// </summary>
public sealed class ValidateCommand : Command<ValidateSettings>
{
    public override int Execute(CommandContext context, ValidateSettings settings, CancellationToken cancellationToken)
    {
        var console = ConsoleFactory.Create(settings);
        if (settings.Labels)
            return CheckLabelled(console, settings, cancellationToken);
        var (images, skipped) = ImageInputs.Expand(settings.Images, settings.DataOptions);
        var verdicts = skipped.Select(s => (s.Path, Ok: false, Note: s.Reason)).ToList();
        var options = settings.Validation;
        foreach (var path in images)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var decoded = ImageDecoder.Decode(path, options);
            using (decoded.Image)
                verdicts.Add((path, decoded.Image is not null, decoded.Rejection ?? decoded.Warning ?? $"{decoded.Header!.Format} {decoded.Header.Width}x{decoded.Header.Height}" +
                                                                (decoded.Header.NeedsOrientation ? $", EXIF orientation {decoded.Header.Origin}" : "")));
        }
        verdicts = verdicts.OrderBy(v => v.Path, StringComparer.Ordinal).ToList();
        if (settings.Json)
        {
            Console.Out.WriteLine(JsonSerializer.Serialize(verdicts.Select(v => new { path = v.Path, ok = v.Ok, note = v.Note }), new JsonSerializerOptions { WriteIndented = true }));
            return 0;
        }
        var bad = verdicts.Where(v => !v.Ok).ToList();
        if (settings.Verbose)
            foreach (var v in verdicts.Where(v => v.Ok))
                console.MarkupLine($"  [green]ok[/] {SafeMarkup.Escape(v.Path)}: {SafeMarkup.Escape(v.Note)}");
        ReportRenderer.Skipped(console, bad.Select(b => new SkippedFile(b.Path, b.Note)).ToList(), verbose: true);
        console.MarkupLine($"{verdicts.Count - bad.Count} of {verdicts.Count} file(s) are usable images; {bad.Count} would be skipped.");
        return 0;
    }

    /// <summary><c>--labels</c>: the data read as training reads it, then <see cref="Training.ImageClassifierTrainer.CheckData(ImageDataset, IProgress{Progress.ProgressEvent}?, CancellationToken)"/>.</summary>
    private static int CheckLabelled(IAnsiConsole console, ValidateSettings settings, CancellationToken cancellationToken)
    {
        var options = new Training.ImageClassifierTrainerOptions
        {
            ImageChecks = settings.Validation,
            Data = new DatasetOptions { FollowLinks = !settings.NoFollowLinks },
            NearDuplicateThreshold = settings.NearDuplicateThreshold,
        };
        var dataset = ImageDatasetLoader.Load(settings.Images, options.Data, requireTrainable: false);
        if (!settings.Quiet && !settings.Json)
            ReportRenderer.Dataset(console, dataset, settings.Verbose);
        // With --json, standard output carries the JSON alone.
        var progress = new ConsoleProgress(console, settings.Quiet || settings.Json);
        var report = progress.Run(() => new Training.ImageClassifierTrainer(options).CheckData(dataset, settings.Json ? null : progress, cancellationToken));
        if (settings.Json)
        {
            Console.Out.WriteLine(JsonSerializer.Serialize(new { data = dataset.Source, skipped = dataset.Skipped.Select(s => new { path = s.Path, reason = s.Reason }), dataChecks = report.ToDto() },
                new JsonSerializerOptions { WriteIndented = true }));
            return 0;
        }
        DataCheckRenderer.Render(console, report, settings.Verbose);
        return 0;
    }
}
