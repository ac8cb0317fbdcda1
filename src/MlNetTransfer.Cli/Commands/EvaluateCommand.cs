using System.ComponentModel;
using System.Diagnostics;
using MlNetTransfer.Cli.Rendering;
using MlNetTransfer.Data;
using MlNetTransfer.Evaluation;
using MlNetTransfer.Inference;
using MlNetTransfer.Progress;
using Spectre.Console;
using Spectre.Console.Cli;

namespace MlNetTransfer.Cli.Commands;

public sealed class EvaluateSettings : ImageSettings
{
    [CommandArgument(0, "<model>")]
    [Description("Model zip written by train.")]
    public string Model { get; init; } = "";

    [CommandArgument(1, "<data>")]
    [Description("Labelled images: a class-per-folder tree or a CSV/TSV manifest, as for train.")]
    public string Data { get; init; } = "";

    [CommandOption("--split <SPLIT>")]
    [Description("auto (validation, else test, else every image), train, validation, test, or all.")]
    [DefaultValue("auto")]
    public string Split { get; init; } = "auto";

    [CommandOption("--json")]
    [Description("Write the metrics as JSON to standard output (with every image's prediction).")]
    public bool Json { get; init; }

    public override ValidationResult Validate() =>
        Split.ToLowerInvariant() is "auto" or "train" or "validation" or "val" or "test" or "all"
            ? base.Validate()
            : ValidationResult.Error("--split must be auto, train, validation, test or all");
}

/// <summary><c>evaluate</c>: metrics of a saved model on labelled images, predicted through the zip itself.</summary>
public sealed class EvaluateCommand : Command<EvaluateSettings>
{
    public override int Execute(CommandContext context, EvaluateSettings settings, CancellationToken cancellationToken)
    {
        var console = ConsoleFactory.Create(settings);
        var dataset = ImageDatasetLoader.Load(settings.Data, settings.DataOptions, requireTrainable: false);
        var (name, images) = Select(dataset, settings.Split.ToLowerInvariant());
        using var classifier = ImageClassifier.Load(settings.Model, validation: settings.Validation);
        var known = classifier.Classes.ToHashSet(StringComparer.Ordinal);

        var skipped = dataset.Skipped.ToList();
        var results = new List<(string, string, float[])>();
        var progress = new ConsoleProgress(console, settings.Quiet || settings.Json);
        progress.Run(() =>
        {
            var clock = Stopwatch.StartNew();
            progress.Report(new StageStarted("evaluate", $"Predicting {images.Count} images ({name})", images.Count));
            foreach (var image in images)
            {
                cancellationToken.ThrowIfCancellationRequested();
                if (!known.Contains(image.Label))
                    skipped.Add(new SkippedFile(image.Path, $"class '{image.Label}' is not one the model knows"));
                else
                {
                    try
                    {
                        var p = classifier.Predict(image.Path);
                        var scores = classifier.Classes.Select(c => p.Scores.First(s => s.Label == c).Score).ToArray();
                        results.Add((image.Path, image.Label, scores));
                    }
                    catch (ImageReadException e)
                    {
                        skipped.Add(new SkippedFile(image.Path, e.Reason));
                    }
                }
                progress.Report(new StageAdvanced("evaluate", results.Count + skipped.Count - dataset.Skipped.Count, images.Count));
            }
            progress.Report(new StageFinished("evaluate", results.Count, clock.Elapsed));
            return 0;
        });
        if (results.Count == 0)
            throw new DatasetException($"{dataset.Source}: none of the {images.Count} images could be evaluated.");
        var report = ClassificationReport.Create(name, classifier.Classes, results);

        if (settings.Json)
        {
            Console.Out.WriteLine(report.ToJson());
            return 0;
        }
        if (!settings.Quiet)
            ReportRenderer.Skipped(console, skipped, settings.Verbose);
        ReportRenderer.Metrics(console, [report]);
        return 0;
    }

    private static (string Name, IReadOnlyList<LabeledImage> Images) Select(ImageDataset dataset, string split) => split switch
    {
        "train" => ("train", dataset.Train),
        "validation" or "val" => ("validation", dataset.Validation),
        "test" => ("test", dataset.Test),
        "all" => ("all", dataset.All.ToList()),
        // A folder without split folders is all evaluation data; with them, the held-out split.
        _ when !dataset.SplitsGiven => ("all", dataset.All.ToList()),
        _ when dataset.Validation.Count > 0 => ("validation", dataset.Validation),
        _ when dataset.Test.Count > 0 => ("test", dataset.Test),
        _ => ("all", dataset.All.ToList()),
    };
}
