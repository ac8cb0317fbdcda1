namespace MlNetTransfer.TorchSharp.OnnxImport;

/// <summary>An ONNX graph, or the part of it asked for, cannot be imported as it stands (an unclean cut, a missing tensor).</summary>
public sealed class OnnxImportException : Exception
{
    /// <summary>Creates the exception with its message.</summary>
    public OnnxImportException(string message) : base(message)
    {
    }

    /// <summary>Creates the exception with its message and cause.</summary>
    public OnnxImportException(string message, Exception inner) : base(message, inner)
    {
    }
}
