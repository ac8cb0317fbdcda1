namespace MlNetTransfer.Training;

/// <summary>
/// An option of <see cref="ImageClassifierTrainerOptions"/> is out of range, or does nothing on the path it was given for.
/// Thrown before any work. <see cref="Option"/> names the property (e.g. <c>FineTuning.LearningRate</c>); the message
/// names options as properties, <c>Head = LbfgsSoftmax</c> for a value.
/// </summary>
public sealed class TrainingOptionsException(string option, string message) : Exception(message)
{
    /// <summary>The property path of the option at fault, e.g. <c>FineTuning.AugmentedViews</c>.</summary>
    public string Option { get; } = option;
}

/// <summary>
/// The training or validation loss stopped being a finite number before any epoch could be kept, so there is no model
/// to save; the message names the phase, the epoch and the learning rate to lower.
/// </summary>
public sealed class TrainingDivergedException(string message) : Exception(message);

/// <summary>A TorchSharp head or fine-tuning was asked for, but the assembly that trains them (package MlNetTransfer.TorchSharp) is not there.</summary>
public sealed class TrainingBackendMissingException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>Mode = Auto could not finish a single candidate within its time budget (<see cref="ModeSearchOptions.TimeBudget"/>).</summary>
public sealed class TrainingTimeBudgetException(string message) : Exception(message);
