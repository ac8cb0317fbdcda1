using System.Runtime.InteropServices;

namespace MlNetTransfer.Data;

/// <summary>
/// A file's bytes in native memory, freed when disposed: the one copy of an image that its content hash and its decoder
/// share (Skia reads it in place). A managed array of a large file lives until a full garbage collection, so decode
/// threads reading large files one after another would hold several at once; this is released the moment it is done.
/// </summary>
internal sealed unsafe class FileBytes : IDisposable
{
    private byte* _data;

    private FileBytes(int length)
    {
        Length = length;
        _data = (byte*)NativeMemory.Alloc((nuint)Math.Max(1, length));
        if (length > 0)
            GC.AddMemoryPressure(length);
    }

    public int Length { get; }

    public Span<byte> Span => _data is null ? throw new ObjectDisposedException(nameof(FileBytes)) : new Span<byte>(_data, Length);

    /// <summary>The first byte; valid until disposed.</summary>
    public IntPtr Pointer => _data is null ? throw new ObjectDisposedException(nameof(FileBytes)) : (IntPtr)_data;

    public static FileBytes Allocate(long length) => new(checked((int)length));

    public void Dispose()
    {
        if (_data is null)
            return;
        NativeMemory.Free(_data);
        _data = null;
        if (Length > 0)
            GC.RemoveMemoryPressure(Length);
    }
}
