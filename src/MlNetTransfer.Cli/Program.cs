using MlNetTransfer.Backbones;
using MlNetTransfer.Cli.Commands;
using MlNetTransfer.Data;
using MlNetTransfer.Inference;
using MlNetTransfer.Training;
using Spectre.Console.Cli;

// Long featurizations free many large native image buffers: keep glibc from fragmenting its heap with them.
MlNetTransfer.IO.NativeMemoryTuning.ReturnLargeBuffersToTheOs();

var app = new CommandApp();
app.Configure(config =>
{
    config.SetApplicationName("mlnet-transfer");
    // An option a command does not take is a usage error, not a flag silently left unread.
    config.UseStrictParsing();
    config.UseAssemblyInformationalVersion();
    config.AddCommand<TrainCommand>("train")
        .WithDescription("Train an image classifier on a pretrained conv base (by default the tool chooses between feature extraction and fine-tuning by measurement); writes a model zip for ML.NET's PredictionEngine.")
        .WithExample("train", "data/fashion-mnist-sample", "--out", "model.zip")
        .WithExample("train", "photos/", "--base", "vgg16-keras", "--base-model", "vgg16-keras.onnx")
        .WithExample("train", "photos/", "--mode", "fine-tune", "--unfreeze", "stage4", "--epochs", "10")
        .WithExample("train", "photos/", "--mode", "feature-extraction", "--head", "torch-mlp");
    config.AddCommand<RetrainCommand>("retrain")
        .WithDescription("Continue training a saved model (fine-tuned, or with a TorchSharp head) on new or more data, from its tuned weights.")
        .WithExample("retrain", "model.zip", "more-photos/", "--out", "model2.zip", "--epochs", "5");
    config.AddCommand<LrFindCommand>("lr-find")
        .WithDescription("Learning-rate range test (fastai's lr_find) for the TorchSharp head or fine-tuning: suggests a rate and saves the loss-vs-rate plot.")
        .WithExample("lr-find", "photos/", "--mode", "fine-tune", "--unfreeze", "stage4");
    config.AddCommand<LearningCurveCommand>("learning-curve")
        .WithDescription("Accuracy against training images per class, on your images, for a CNN trained from scratch, feature extraction and fine-tuning; a fitted curve says what more images would buy.")
        .WithExample("learning-curve", "photos/", "--out", "curve");
    config.AddCommand<EvaluateCommand>("evaluate")
        .WithDescription("Metrics of a model zip on labelled images: accuracy, per-class precision/recall/F1, confusion matrix, log-loss.")
        .WithExample("evaluate", "model.zip", "data/fashion-mnist-sample");
    config.AddCommand<PredictCommand>("predict")
        .WithDescription("Label and top-k scores for an image, a folder or a manifest.")
        .WithExample("predict", "model.zip", "photo.jpg", "--json");
    config.AddCommand<InfoCommand>("info")
        .WithDescription("What a model zip is: classes, conv base, mode, metrics, training options, creation time.")
        .WithExample("info", "model.zip");
    config.AddCommand<ExportCommand>("export")
        .WithDescription("Write the whole classifier (conv base + head -> probabilities) as one ONNX file for use outside .NET.")
        .WithExample("export", "model.zip", "--out", "classifier.onnx");
    config.AddCommand<FeaturizeCommand>("featurize")
        .WithDescription("Run the conv base over a data set, or one shard of it (--shard i/n, or --shard auto in a Slurm job array or a Kubernetes Indexed Job), and write the feature vectors to a shard file; train --features merges shards.")
        .WithExample("featurize", "photos/", "--shard", "2/4", "--out", "features-2-of-4.shard")
        .WithExample("featurize", "photos/", "--shard", "auto");
    config.AddCommand<ValidateCommand>("validate")
        .WithDescription("Check images as training would (size limits from the header, truncation, corruption) and list every bad file with the reason.")
        .WithExample("validate", "photos/");
    config.AddCommand<BasesCommand>("bases")
        .WithDescription("List the conv-base presets with their preprocessing and named blocks.");
    config.SetExceptionHandler((exception, _) => ErrorReporter.Report(exception, args));
});

using var cancel = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    // First Ctrl+C asks the run to stop between steps; a second one ends the process.
    if (!cancel.IsCancellationRequested)
    {
        e.Cancel = true;
        cancel.Cancel();
        Console.Error.WriteLine("Stopping (Ctrl+C again to kill)...");
    }
};
return app.Run(args, cancel.Token);

/// <summary>Every error is one line on standard error with a non-zero exit code; --verbose adds the stack trace.</summary>
internal static class ErrorReporter
{
    public static int Report(Exception exception, string[] args)
    {
        bool verbose = args.Contains("--verbose") || args.Contains("-v");
        var e = exception is CommandRuntimeException { InnerException: { } inner } ? inner : exception;
        (string message, int code) = e switch
        {
            CommandParseException or CommandRuntimeException => ($"usage: {e.Message} (see --help)", 2),
            TrainingOptionsException => ($"usage: {OptionFlags.Translate(e.Message)} (see --help)", 2),
            OperationCanceledException => ("stopped by the user before a model existed: nothing was saved (a model already at that path is untouched).", 130),
            DatasetException or ConvBaseException or ModelLoadException or ImageReadException or TrainingBackendMissingException => (e.Message, 1),
            TrainingDivergedException => (OptionFlags.Translate(e.Message), 1),
            FileNotFoundException or DirectoryNotFoundException or UnauthorizedAccessException => (e.Message, 1),
            _ => ($"{e.GetType().Name}: {e.Message}", 1),
        };
        Console.Error.WriteLine($"error: {MlNetTransfer.IO.PrintableText.Escape(message)}");
        if (verbose)
            Console.Error.WriteLine(exception);
        return code;
    }
}
