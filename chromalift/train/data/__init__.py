"""What a training set is: caches, packs, one loader, augmentation, device-resident batches."""
