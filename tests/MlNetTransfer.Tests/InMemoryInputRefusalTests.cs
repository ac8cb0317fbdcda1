using Microsoft.ML;
using Microsoft.ML.Data;
using MlNetTransfer.Backbones;
using MlNetTransfer.Data;
using MlNetTransfer.Inference;
using MlNetTransfer.Tests.Fixtures;
using MlNetTransfer.Training;

namespace MlNetTransfer.Tests;

/// <summary>
/// Bad images in memory meet the file's checks, with the file's reasons and the caller's name for the image; a stream
/// is never read past the size limit; a zip whose loader is not ours says it takes files only.
/// </summary>
public sealed class InMemoryInputRefusalTests : IClassFixture<InMemoryInputRefusalTests.SmallModel>
{
    private const long Limit = 64 * 1024;

    private readonly SmallModel _model;

    public InMemoryInputRefusalTests(SmallModel model) => _model = model;

    /// <summary>A model on the small VGG16-shaped base (quick), and a classifier over it with a 64 KB size limit.</summary>
    public sealed class SmallModel : IDisposable
    {
        public TestData.TempFolder Temp { get; } = new();
        public string Zip { get; }
        public string Image { get; }
        public ImageClassifier Classifier { get; }

        public SmallModel()
        {
            var preset = ConvBaseRegistry.Get("vgg16-torchvision").WithModelFile(Vgg16ShapedOnnx.WriteTorchvisionLike(Temp.File("vgg.onnx")));
            var dataset = TestData.FashionSubset(2, 4, 1);
            using (var trained = new ImageClassifierTrainer(new ImageClassifierTrainerOptions { ConvBase = preset, Lbfgs = new LbfgsHeadOptions { L2Grid = [1f], Folds = 2 } }).Train(dataset))
            {
                Zip = Temp.File("model.zip");
                trained.Save(Zip);
            }
            Image = dataset.Test[0].Path;
            Classifier = ImageClassifier.Load(Zip, validation: new ImageValidationOptions { MaxFileBytes = Limit });
        }

        public void Dispose()
        {
            Classifier.Dispose();
            Temp.Dispose();
        }
    }

    [Fact]
    public void BadBytesGetTheFilesReasonUnderTheCallersName()
    {
        using var temp = new TestData.TempFolder();
        var truncatedJpeg = BadImages.AsymmetricJpeg(400, 300);
        var cases = new (string Name, byte[] Bytes, string Expected)[]
        {
            ("bomb.png", BadImages.HeaderBombPng(9000), "megapixels"),
            ("bomb.jpg", BadImages.HeaderBombJpeg(), "megapixels"),
            ("notes.png", "just text, not an image"u8.ToArray(), "not an image: content is text"),
            ("cut.jpg", truncatedJpeg[..(truncatedJpeg.Length / 2)], "truncated"),
            ("tiny.png", BadImages.Png(4, 4), "too small"),
            ("strip.png", BadImages.Png(400, 10), "extreme aspect ratio"),
        };
        foreach (var (name, bytes, expected) in cases)
        {
            var file = temp.File(name);
            File.WriteAllBytes(file, bytes);
            var fromFile = Assert.Throws<ImageReadException>(() => _model.Classifier.Predict(file));
            var fromBytes = Assert.Throws<ImageReadException>(() => _model.Classifier.Predict(bytes, name));
            ImageReadException fromStream;
            using (var stream = new InMemoryInputTests.UnseekableStream(new MemoryStream(bytes)))
                fromStream = Assert.Throws<ImageReadException>(() => _model.Classifier.Predict(stream, name));
            Assert.Contains(expected, fromFile.Reason);
            Assert.Equal(fromFile.Reason, fromBytes.Reason);
            Assert.Equal(fromFile.Reason, fromStream.Reason);
            Assert.Equal(name, fromBytes.ImagePath);
            Assert.Equal($"{name}: {fromFile.Reason}", fromStream.Message);
        }

        var empty = Assert.Throws<ImageReadException>(() => _model.Classifier.Predict(Array.Empty<byte>()));
        Assert.Equal(ImageClassifier.UnnamedImage, empty.ImagePath);
        Assert.Equal("empty image (0 bytes)", empty.Reason);
        Assert.Equal("empty image (0 bytes)", Assert.Throws<ImageReadException>(() => _model.Classifier.Predict(new MemoryStream(), "upload")).Reason);
    }

    [Fact]
    public void AStreamIsNeverReadPastTheSizeLimit()
    {
        // Seekable and too long: refused from its length, unread.
        using var big = new MemoryStream(new byte[Limit + 1]);
        var refused = Assert.Throws<ImageReadException>(() => _model.Classifier.Predict(big, "big.jpg"));
        Assert.StartsWith("image too large", refused.Reason);
        Assert.Contains("ImageChecks.MaxFileBytes", refused.Reason);
        Assert.Equal(0, big.Position);

        // Endless and unseekable (a body that never ends): read up to one byte past the limit, then refused.
        using var endless = new EndlessJpeg();
        refused = Assert.Throws<ImageReadException>(() => _model.Classifier.Predict(endless, "endless.jpg"));
        Assert.StartsWith("image too large (more than the limit of 0.1 MB", refused.Reason);
        Assert.InRange(endless.Sent, Limit + 1, Limit + 1);

        var bytes = new byte[Limit + 1];
        Assert.StartsWith("image too large", Assert.Throws<ImageReadException>(() => _model.Classifier.Predict(bytes)).Reason);

        // A file just within the limit, from its position on (the app may have read a header of its own first).
        var image = File.ReadAllBytes(_model.Image);
        Assert.True(image.Length < Limit);
        using var withPrefix = new MemoryStream([.. "HEAD"u8.ToArray(), .. image]);
        withPrefix.Position = 4;
        Assert.Equal(_model.Classifier.Predict(_model.Image).Scores, _model.Classifier.Predict(withPrefix).Scores);
    }

    [Fact]
    public void AnMLImageHasItsSizeChecked()
    {
        using var tiny = MLImage.CreateFromPixels(4, 4, MLPixelFormat.Bgra32, new byte[4 * 4 * 4]);
        var refused = Assert.Throws<ImageReadException>(() => _model.Classifier.Predict(tiny, "frame 7"));
        Assert.Equal("frame 7", refused.ImagePath);
        Assert.StartsWith("too small: 4x4", refused.Reason);
        using var fine = MLImage.CreateFromFile(_model.Image);
        Assert.Equal(_model.Classifier.Predict(_model.Image).Scores, _model.Classifier.Predict(fine).Scores);
        // The caller's image is not disposed: it can be predicted again.
        Assert.Equal(_model.Classifier.Predict(_model.Image).Scores, _model.Classifier.Predict(fine).Scores);
    }

    [Fact]
    public void MisuseIsAnArgumentError()
    {
        Assert.Throws<ArgumentNullException>(() => _model.Classifier.Predict((byte[])null!));
        Assert.Throws<ArgumentNullException>(() => _model.Classifier.Predict((Stream)null!));
        Assert.Throws<ArgumentNullException>(() => _model.Classifier.Predict((MLImage)null!));
        var closed = new MemoryStream([1, 2, 3]);
        closed.Dispose();
        var e = Assert.Throws<ArgumentException>(() => _model.Classifier.Predict(closed));
        Assert.Equal("image", e.ParamName);
    }

    [Fact]
    public void AZipWhoseLoaderIsNotOursTakesFilesOnlyAndSaysSo()
    {
        using var temp = new TestData.TempFolder();
        var zip = temp.File("plain.zip");
        var rows = PlainMlNetZip.Write(zip);

        using var classifier = ImageClassifier.Load(zip);
        Assert.False(classifier.PredictsInMemory);
        var e = Assert.Throws<NotSupportedException>(() => classifier.Predict(File.ReadAllBytes(rows[0].Path), "upload.png"));
        Assert.Contains(zip, e.Message);
        Assert.Contains("upload.png", e.Message);
        Assert.Contains("predict from a file path", e.Message);
    }

    /// <summary>Bytes for ever; counts what was read.</summary>
    private sealed class EndlessJpeg : Stream
    {
        public long Sent { get; private set; }
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }

        public override int Read(byte[] buffer, int offset, int count)
        {
            // The array comes from the reader, zeroed or not; what it holds does not matter before the limit.
            Sent += count;
            return count;
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
