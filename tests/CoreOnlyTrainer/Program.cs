// CoreOnlyTrainer <data> <model.zip>: feature extraction with the core library alone, then the same data with
// Mode = FineTuning, which needs the TorchSharp backend this app does not reference.
using MlNetTransfer.Training;

using (var trained = new ImageClassifierTrainer(new ImageClassifierTrainerOptions { Lbfgs = new LbfgsHeadOptions { L2 = 1 } }).Train(args[0]))
{
    trained.Save(args[1]);
    Console.WriteLine($"trained {trained.Metadata.Head.Kind} on {trained.Metadata.Training.ImagesInModel} images");
}
try
{
    new ImageClassifierTrainer(new ImageClassifierTrainerOptions { Mode = TrainingMode.FineTuning }).Train(args[0]);
    Console.WriteLine("fine-tuned: unexpected");
    return 1;
}
catch (TrainingBackendMissingException e)
{
    Console.WriteLine($"refused: {e.Message}");
    return 0;
}
