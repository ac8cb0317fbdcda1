using Microsoft.ML;
using MlNetTransfer.Backbones;
using MlNetTransfer.Data;
using MlNetTransfer.Featurization;
using MlNetTransfer.Inference;
using MlNetTransfer.Onnx;
using MlNetTransfer.Tests.Fixtures;
using MlNetTransfer.Training;
using SkiaSharp;

namespace MlNetTransfer.Tests;

/// <summary>A phone photo stored sideways with an EXIF orientation gives the same pixels in training and in prediction.</summary>
public class ExifOrientationTests
{
    [Fact]
    public void TrainingAndPredictionSeeTheSameUprightPixels()
    {
        using var temp = new TestData.TempFolder();
        var exif = temp.File("sideways.jpg");
        File.WriteAllBytes(exif, BadImages.WithExifOrientation(BadImages.AsymmetricJpeg(), 6));
        // The reference: the stored pixels turned 90 degrees clockwise by hand, saved losslessly without EXIF.
        var upright = temp.File("upright.png");
        using (var stored = SKBitmap.Decode(exif))
        using (var turned = new SKBitmap(stored.Height, stored.Width, stored.ColorType, stored.AlphaType))
        {
            for (int y = 0; y < stored.Height; y++)
                for (int x = 0; x < stored.Width; x++)
                    turned.SetPixel(stored.Height - 1 - y, x, stored.GetPixel(x, y));
            using var png = turned.Encode(SKEncodedImageFormat.Png, 100);
            File.WriteAllBytes(upright, png.ToArray());
        }

        var preset = ConvBaseRegistry.Get("vgg16-torchvision").WithModelFile(Vgg16ShapedOnnx.WriteTorchvisionLike(temp.File("vgg.onnx")));
        // No cache: both vectors come from this one run, not one of them from an earlier run's batch.
        var features = ActivationStoreTests.Featurize(FeaturizerGraphCache.GetOrBuild(preset), [new LabeledImage(exif, "x"), new LabeledImage(upright, "x")], cacheRoot: null).Images;
        Assert.Equal(2, features.Count);
        Assert.Equal(features[1].Plain, features[0].Plain); // training: identical, bit for bit

        using var trained = new ImageClassifierTrainer(new ImageClassifierTrainerOptions { ConvBase = preset, Lbfgs = new LbfgsHeadOptions { L2Grid = [1f], Folds = 2 } })
            .Train(TestData.FashionSubset(3, 6, 3));
        trained.Save(temp.File("m.zip"));
        using var classifier = ImageClassifier.Load(temp.File("m.zip"));
        var a = classifier.Predict(exif).Scores.OrderBy(s => s.Label).Select(s => s.Score).ToArray();
        var b = classifier.Predict(upright).Scores.OrderBy(s => s.Label).Select(s => s.Score).ToArray();
        Assert.Equal(b, a); // prediction through the saved model: identical too
    }
}
