namespace MlNetTransfer.Featurization;

/// <summary>Where ONNX Runtime runs the conv base.</summary>
public enum ExecutionDevice
{
    /// <summary>ONNX Runtime's CPU execution provider (default; every machine).</summary>
    Cpu,

    /// <summary>
    /// ONNX Runtime's CUDA execution provider, device 0. Needs an ONNX Runtime build with CUDA (build with
    /// <c>-p:OnnxRuntimeGpu=true</c>: Microsoft.ML.OnnxRuntime.Gpu in place of Microsoft.ML.OnnxRuntime) and the CUDA
    /// libraries it links (ORT 1.31's asks for CUDA 13: libcublasLt.so.13; cuDNN 9) on the machine; where either is
    /// missing the session falls back to the CPU and says why.
    /// </summary>
    Cuda,
}
