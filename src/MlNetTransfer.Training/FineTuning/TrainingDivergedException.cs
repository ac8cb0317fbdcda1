namespace MlNetTransfer.Training.FineTuning;

/// <summary>
/// The training or validation loss stopped being a finite number before any epoch could be kept, so there is no model to save;
/// the message names the phase, the epoch and the learning rate to lower.
/// </summary>
public sealed class TrainingDivergedException(string message) : Exception(message);
