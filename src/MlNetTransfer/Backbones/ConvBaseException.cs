namespace MlNetTransfer.Backbones;

/// <summary>A conv base or its preprocessing spec is missing, unreadable or does not fit.</summary>
public sealed class ConvBaseException(string message, Exception? inner = null) : Exception(message, inner);
