// PackageConsumer <data folder> <work folder>: trains, saves, loads, predicts, fine-tunes and serves through the packages.
using MlNetTransfer.Hosting;
using MlNetTransfer.Inference;
using MlNetTransfer.Training;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

string data = args[0], work = args[1];
Directory.CreateDirectory(work);
string image = Directory.EnumerateFiles(Path.Combine(data, "test"), "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal).First();

Console.WriteLine($"resnet18 model in bin: {File.Exists(Path.Combine(AppContext.BaseDirectory, "DnnImageModels", "ResNet18Onnx", "ResNet18.onnx"))}");

// Feature extraction (core package): one L2, two folds.
var zip = Path.Combine(work, "model.zip");
string[] classes;
using (var trained = new ImageClassifierTrainer(new ImageClassifierTrainerOptions { Lbfgs = new LbfgsHeadOptions { L2Grid = [1f], Folds = 2 }, Threads = 2 }).Train(data))
{
    trained.Save(zip);
    classes = [.. trained.Metadata.Classes];
    Console.WriteLine($"trained: {trained.Metadata.Head.Kind} on {trained.Metadata.Training.ImagesInModel} images, classes {string.Join(",", classes)}");
}

using (var classifier = ImageClassifier.Load(zip))
{
    var p = classifier.Predict(image);
    Console.WriteLine($"predicted: {p.Label} {p.Probability:F3} known={classes.Contains(p.Label)}");
}

// Fine-tuning (TorchSharp package + libtorch): one head epoch, one epoch of the last stage.
var tunedZip = Path.Combine(work, "tuned.zip");
using (var tuned = new ImageClassifierTrainer(new ImageClassifierTrainerOptions
{
    Mode = TrainingMode.FineTuning, Threads = 2, Refit = false,
    FineTuning = new FineTuningOptions { HeadEpochs = 1, Epochs = 1, AugmentedViews = 1, BatchSize = 8 },
}).Train(data))
{
    tuned.Save(tunedZip);
    Console.WriteLine($"fine-tuned: {tuned.Metadata.Head.Kind}, unfrozen {string.Join(",", tuned.Metadata.FineTune!.UnfrozenBlocks)}");
}

// Serving (hosting package).
var builder = Host.CreateApplicationBuilder();
builder.Services.AddImageClassifier(o => { o.ModelPath = zip; o.ReloadOnChange = false; });
using (var host = builder.Build())
{
    await host.StartAsync();
    var service = host.Services.GetRequiredService<ImageClassifierService>();
    var p = await service.PredictAsync(await File.ReadAllBytesAsync(image), Path.GetFileName(image));
    Console.WriteLine($"served: {p.Label} known={classes.Contains(p.Label)}");
    await host.StopAsync();
}
Console.WriteLine("done");
