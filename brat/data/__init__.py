"""Reading datasets: decoding any input to one greyscale image, dataset layouts, duplicate finding,
group-aware splits and manifests, and the prepared (cropped, resized, cached) model inputs."""
